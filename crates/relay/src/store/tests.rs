//! Store-level tests on both back ends (PostgreSQL at 127.0.0.1:5432, like the scale-out
//! tests): what the relay's own tests cannot reach through the WebSocket.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use rand_core::{OsRng, RngCore};

use super::*;

fn addr(user: &str, device: u32) -> DeviceAddress {
    DeviceAddress::new(user, device).unwrap()
}

fn suffix() -> String {
    format!("{:016x}", OsRng.next_u64())
}

fn pg_url() -> String {
    std::env::var("RELAY_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// The expiry sweep removes exactly the expired mailbox rows (oldest first) and their group
/// payloads, and keeps everything younger. Run on each back end's store directly.
async fn check_expiry_sweep(store: Store) {
    let limits = StoreLimits {
        max_mailbox: 1_000,
        ttl_ms: 1_000,
        dedup_ms: 1_000,
    };
    let bob = addr("bob", 1);
    let carol = addr("carol", 1);
    let envelope = |id: u64, to: Vec<DeviceAddress>, now_ms: u64| NewEnvelope {
        sender: addr("alice", 1),
        msg_id: id,
        flags: 0,
        recipients: to,
        payload: vec![7u8; 16].into(),
        now_ms,
    };
    // Three old envelopes (one a group envelope for bob and carol), then two young ones.
    let old = WriteBatch {
        sends: vec![vec![
            envelope(1, vec![bob.clone()], 1_000),
            envelope(2, vec![bob.clone()], 1_000),
            envelope(3, vec![bob.clone(), carol.clone()], 1_000),
        ]],
        ..WriteBatch::default()
    };
    store.commit(&Arc::new(old), limits).await.unwrap();
    let young = WriteBatch {
        sends: vec![vec![
            envelope(4, vec![bob.clone()], 5_000),
            envelope(5, vec![bob.clone(), carol.clone()], 5_000),
        ]],
        ..WriteBatch::default()
    };
    store.commit(&Arc::new(young), limits).await.unwrap();
    assert_eq!(store.mailbox_len(&bob).await.unwrap(), 5);

    // At 3 s the old rows (expired at 2 s) go: 3 of bob's, 1 of carol's.
    assert_eq!(store.expire(3_000).await.unwrap(), 4);
    assert_eq!(store.mailbox_len(&bob).await.unwrap(), 2);
    assert_eq!(store.mailbox_len(&carol).await.unwrap(), 1);
    let left = store.fetch(&bob, 0, 10, 3_000).await.unwrap();
    let ids: Vec<u64> = left.iter().map(|d| d.msg_id).collect();
    assert_eq!(ids, vec![4, 5]);
    assert!(left.iter().all(|d| d.payload[..] == [7u8; 16]));
    // Nothing else is due yet; at 7 s everything is.
    assert_eq!(store.expire(3_000).await.unwrap(), 0);
    assert_eq!(store.expire(7_000).await.unwrap(), 3);
    assert_eq!(store.mailbox_len(&bob).await.unwrap(), 0);
    assert_eq!(store.mailbox_len(&carol).await.unwrap(), 0);
}

#[tokio::test]
async fn sqlite_expiry_sweep_removes_expired_rows_and_keeps_the_rest() {
    let dir = std::env::temp_dir().join(format!("e2ee-relay-store-{}", suffix()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}", dir.join("sweep.db").display());
    check_expiry_sweep(Store::open(&url, "unused", SqliteSync::Full).await.unwrap()).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn postgres_expiry_sweep_removes_expired_rows_and_keeps_the_rest() {
    let schema = format!("relay_store_test_{}", suffix());
    let store = Store::open(&pg_url(), &schema, SqliteSync::Full)
        .await
        .unwrap();
    check_expiry_sweep(store).await;
    PgStore::drop_schema(&pg_url(), &schema).await.unwrap();
}

/// Nodes of one cluster start together: several opening one new schema at the same moment
/// all succeed (PostgreSQL's `CREATE SCHEMA IF NOT EXISTS` is not atomic against itself).
#[tokio::test]
async fn postgres_nodes_opening_one_new_schema_at_once_all_start() {
    for _ in 0..5 {
        let schema = format!("relay_store_race_{}", suffix());
        let url = pg_url();
        let opens = (0..4).map(|_| Store::open(&url, &schema, SqliteSync::Full));
        let results = futures_util::future::join_all(opens).await;
        for result in results {
            result.unwrap();
        }
        PgStore::drop_schema(&pg_url(), &schema).await.unwrap();
    }
}
