//! SQLite back end (embedded default): one file in WAL mode.
//!
//! SQLite has one writer at a time, and this process is the only one using the file, so
//! sequence numbers are allocated in memory and their high-water mark is persisted in
//! `relay_meta` by the same transaction that uses them: a number is never handed out twice,
//! even across crashes.

use std::{
    str::FromStr,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use sqlx::{
    Row as _, Sqlite, SqlitePool, Transaction,
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
};

use super::{StoreError, from_db, store_ops, to_db};
use crate::migrations::Embedded;

/// SQLite mailboxes.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    next_seq: Arc<AtomicU64>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `url` and migrates it. `full_sync` makes
    /// every commit fsync the WAL (durable against power loss, not just process crashes).
    pub async fn open(url: &str, full_sync: bool) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(if full_sync {
                SqliteSynchronous::Full
            } else {
                SqliteSynchronous::Normal
            })
            .busy_timeout(Duration::from_secs(10))
            .pragma("cache_size", "-65536");
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        sqlx::migrate::Migrator::new(Embedded::Sqlite)
            .await?
            .run(&pool)
            .await?;
        let row = sqlx::query(
            "SELECT MAX(COALESCE((SELECT value FROM relay_meta WHERE key = 'next_seq'), 1), \
             COALESCE((SELECT MAX(seq) FROM mailbox), 0) + 1, \
             COALESCE((SELECT MAX(id) FROM payloads), 0) + 1)",
        )
        .fetch_one(&pool)
        .await?;
        let next: i64 = row.try_get(0)?;
        Ok(Self {
            pool,
            next_seq: Arc::new(AtomicU64::new(from_db(next).max(1))),
        })
    }

    async fn alloc_seqs(
        &self,
        _tx: &mut Transaction<'_, Sqlite>,
        n: usize,
    ) -> Result<Vec<u64>, StoreError> {
        let first = self.next_seq.fetch_add(n as u64, Ordering::SeqCst);
        Ok((first..first + n as u64).collect())
    }

    async fn persist_seq(&self, tx: &mut Transaction<'_, Sqlite>) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO relay_meta (key, value) VALUES ('next_seq', ?) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(to_db(self.next_seq.load(Ordering::SeqCst)))
        .execute(&mut **tx)
        .await?;
        Ok(())
    }
}

store_ops!(SqliteStore, Sqlite);
