//! Shared test harness: a relay on a loopback port, tickets, and frame helpers.
#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use std::{
    net::SocketAddr,
    path::PathBuf,
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use e2ee_relay::{
    Config, Relay,
    wire::{ClientFrame, Delivery, DeviceAddress, OutEnvelope, SendStatus, ServerFrame, UserId},
};
use e2ee_ticket::Ticket;
use e2ee_tools::{ClientError, RelayClient};
use ed25519_dalek::SigningKey;
use rand_core::{OsRng, RngCore};
use tokio::sync::oneshot;

pub fn random_suffix() -> String {
    format!("{:016x}", OsRng.next_u64())
}

/// A device address of a test (the ids here always follow the user-id rule).
pub fn addr(user: &str, device: u32) -> DeviceAddress {
    DeviceAddress::new(user, device).unwrap()
}

/// A user id of a test.
pub fn user(id: &str) -> UserId {
    UserId::new(id).unwrap()
}

pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A temporary directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new() -> Self {
        let p = std::env::temp_dir().join(format!("e2ee-relay-test-{}", random_suffix()));
        std::fs::create_dir_all(&p).unwrap();
        Self(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub struct TestRelay {
    pub addr: String,
    pub relay: Arc<Relay>,
    pub key: SigningKey,
    stop: Option<oneshot::Sender<()>>,
    pub server: tokio::task::JoinHandle<()>,
}

impl TestRelay {
    pub fn ticket(&self, user: &str, device: u32) -> String {
        ticket(&self.key, user, device)
    }

    pub async fn connect(&self, user: &str, device: u32) -> RelayClient {
        RelayClient::connect(&self.addr, &self.ticket(user, device))
            .await
            .unwrap()
    }

    /// Connects and consumes the QUEUE_DRAINED of an empty mailbox.
    pub async fn connect_empty(&self, user: &str, device: u32) -> RelayClient {
        let mut c = self.connect(user, device).await;
        assert_eq!(
            c.recv().await.unwrap(),
            ServerFrame::QueueDrained { count: 0 }
        );
        c
    }

    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        let _ = tokio::time::timeout(Duration::from_secs(5), &mut self.server).await;
        self.server.abort();
    }
}

pub fn signing_key() -> SigningKey {
    SigningKey::generate(&mut OsRng)
}

pub fn ticket(key: &SigningKey, user: &str, device: u32) -> String {
    let now = now_secs();
    Ticket {
        device: addr(user, device),
        issued_at: now,
        expires_at: now + 3600,
    }
    .sign_to_text(key)
}

pub fn config(key: &SigningKey, dir: &TempDir) -> Config {
    let mut c = Config::with_ticket_key(hex::encode(key.verifying_key().to_bytes()));
    c.data_dir = dir.0.clone();
    c
}

pub async fn start(config: Config, key: SigningKey) -> TestRelay {
    let relay = Relay::start(&config).await.unwrap();
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (stop, rx) = oneshot::channel::<()>();
    let app = e2ee_relay::standalone_router(relay.clone());
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await;
    });
    TestRelay {
        addr,
        relay,
        key,
        stop: Some(stop),
        server,
    }
}

pub fn env(msg_id: u64, to: &[(&str, u32)], payload: &[u8]) -> OutEnvelope {
    OutEnvelope {
        flags: 0,
        msg_id,
        recipients: to.iter().map(|(u, d)| addr(u, *d)).collect(),
        payload: payload.to_vec(),
    }
}

pub async fn send_ok(c: &mut RelayClient, envs: Vec<OutEnvelope>) -> Vec<(u64, SendStatus)> {
    c.send(&ClientFrame::Send(envs)).await.unwrap();
    match c.recv().await.unwrap() {
        ServerFrame::SendResult(r) => r,
        other => panic!("expected SEND_RESULT, got {other:?}"),
    }
}

pub async fn recv_delivery(c: &mut RelayClient) -> Delivery {
    match c.recv().await.unwrap() {
        ServerFrame::Deliver(d) => d,
        other => panic!("expected DELIVER, got {other:?}"),
    }
}

/// Asserts nothing arrives for `ms` milliseconds.
pub async fn assert_silent(c: &mut RelayClient, ms: u64) {
    match c.recv_timeout(Duration::from_millis(ms)).await {
        Err(ClientError::Timeout) => {}
        other => panic!("expected silence, got {other:?}"),
    }
}

/// PostgreSQL for scale-out tests (CI and every dev machine have it; a missing server fails).
pub fn pg_url() -> String {
    std::env::var("RELAY_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// Redis for scale-out tests.
pub fn redis_url() -> String {
    std::env::var("RELAY_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// A fresh PostgreSQL schema and Redis prefix for one test, removed by [`ScaleOut::cleanup`].
pub struct ScaleOut {
    pub schema: String,
    pub prefix: String,
}

impl ScaleOut {
    pub fn new() -> Self {
        let s = random_suffix();
        Self {
            schema: format!("relay_test_{s}"),
            prefix: format!("relay-test-{s}"),
        }
    }

    pub fn config(&self, key: &SigningKey, dir: &TempDir, redis: bool, node: &str) -> Config {
        let mut c = config(key, dir);
        c.database_url = Some(pg_url());
        c.database_schema = self.schema.clone();
        if redis {
            c.redis_url = Some(redis_url());
            c.redis_prefix = self.prefix.clone();
            c.node_id = Some(node.into());
        }
        c
    }

    pub async fn cleanup(self) {
        e2ee_relay::drop_postgres_schema(&pg_url(), &self.schema)
            .await
            .unwrap();
        let client = redis::Client::open(redis_url()).unwrap();
        let mut con = client.get_multiplexed_async_connection().await.unwrap();
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{}:*", self.prefix))
            .query_async(&mut con)
            .await
            .unwrap();
        if !keys.is_empty() {
            let _: () = redis::cmd("DEL")
                .arg(&keys)
                .query_async(&mut con)
                .await
                .unwrap();
        }
    }
}

/// Retries are deduplicated inside the dedup window and stored again after it, before the
/// expiry sweep has removed the old pair. Run on each back end.
pub async fn check_dedup_window(mut cfg: Config, key: SigningKey) {
    cfg.dedup_window_secs = 1;
    let r = start(cfg, key).await;
    let mut alice = r.connect_empty("alice", 1).await;
    let first = send_ok(&mut alice, vec![env(7, &[("bob", 1)], b"x")]).await;
    assert_eq!(first, vec![(7, SendStatus::Stored)]);
    let retry = send_ok(&mut alice, vec![env(7, &[("bob", 1)], b"x")]).await;
    assert_eq!(retry, vec![(7, SendStatus::Duplicate)]);
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let late = send_ok(&mut alice, vec![env(7, &[("bob", 1)], b"x")]).await;
    assert_eq!(late, vec![(7, SendStatus::Stored)]);
    // The renewed pair deduplicates again.
    let retry = send_ok(&mut alice, vec![env(7, &[("bob", 1)], b"x")]).await;
    assert_eq!(retry, vec![(7, SendStatus::Duplicate)]);
    assert_eq!(r.relay.mailbox_len(&addr("bob", 1)).await.unwrap(), 2);
    r.stop().await;
}

/// Polls until `device`'s mailbox holds `n` rows (acks are not answered), then asserts it.
pub async fn wait_mailbox_len(r: &TestRelay, device: &DeviceAddress, n: u64) {
    for _ in 0..100 {
        if r.relay.mailbox_len(device).await.unwrap() == n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(r.relay.mailbox_len(device).await.unwrap(), n);
}

/// A device's acks delete rows of its own mailbox only, even when they name another
/// device's sequence numbers and are committed together with that device's own acks.
pub async fn check_acks_only_delete_own_rows(cfg: Config, key: SigningKey) {
    let r = start(cfg, key).await;
    let mut alice = r.connect_empty("alice", 1).await;
    let mut bob = r.connect_empty("bob", 1).await;
    let mut mallory = r.connect_empty("mallory", 1).await;
    send_ok(
        &mut alice,
        vec![
            env(1, &[("bob", 1)], b"for bob"),
            env(2, &[("mallory", 1)], b"for mallory"),
            env(3, &[("bob", 1), ("mallory", 1)], b"for both"),
        ],
    )
    .await;
    let mut bob_seqs = Vec::new();
    for _ in 0..2 {
        bob_seqs.push(recv_delivery(&mut bob).await.seq);
    }
    let mut mallory_seqs = Vec::new();
    for _ in 0..2 {
        mallory_seqs.push(recv_delivery(&mut mallory).await.seq);
    }
    let (bob_addr, mallory_addr) = (addr("bob", 1), addr("mallory", 1));
    // Mallory acks her own rows and bob's, in one frame.
    let mut acks = mallory_seqs.clone();
    acks.extend(&bob_seqs);
    mallory.send(&ClientFrame::Ack(acks)).await.unwrap();
    wait_mailbox_len(&r, &mallory_addr, 0).await;
    assert_eq!(r.relay.mailbox_len(&bob_addr).await.unwrap(), 2);
    // Bob's own acks still work, including the group row mallory released her share of.
    bob.send(&ClientFrame::Ack(bob_seqs)).await.unwrap();
    wait_mailbox_len(&r, &bob_addr, 0).await;
    r.stop().await;
}
