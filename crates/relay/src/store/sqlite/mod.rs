//! SQLite back end (embedded default): one file in WAL mode.
//!
//! SQLite has one writer at a time, and this process is the only one using the file, so
//! sequence numbers are allocated in memory and their high-water mark is persisted in
//! `relay_meta` by the same transaction that uses them: a number is never handed out twice,
//! even across crashes.

use std::{
    str::FromStr,
    sync::{Arc, Mutex, atomic::AtomicU64},
    time::Duration,
};

use sqlx::{
    Row as _, Sqlite, SqlitePool,
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
};

mod commit;

use commit::CommitConnection;

use super::{
    Committed, MailboxCounts, SqliteSync, StoreError, StoreLimits, WriteBatch, from_db,
    reads::shared_reads,
};
use crate::migrations;

/// Mailbox sizes counted by the only writer of the file stay valid until rows are removed
/// by something else (the expiry sweep clears them); recounted now and then regardless.
const SQLITE_COUNTS_MAX_AGE: Duration = Duration::from_secs(600);

/// SQLite mailboxes.
#[derive(Debug, Clone)]
pub(crate) struct SqliteStore {
    /// Reads, presence lists and the expiry sweep.
    pool: SqlitePool,
    /// The group commit's own connection.
    commit_conn: Arc<Mutex<CommitConnection>>,
    next_seq: Arc<AtomicU64>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `url` and migrates it, committing as hard
    /// as `sync` says.
    pub(crate) async fn open(url: &str, sync: SqliteSync) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(match sync {
                SqliteSync::Full => SqliteSynchronous::Full,
                SqliteSync::Normal => SqliteSynchronous::Normal,
            })
            .busy_timeout(Duration::from_secs(10))
            .pragma("cache_size", "-65536");
        let path = options.get_filename().to_owned();
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        e2ee_migrations::migrator(migrations::SQLITE)
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
        let commit_conn =
            CommitConnection::open(&path, sync, MailboxCounts::new(SQLITE_COUNTS_MAX_AGE))?;
        Ok(Self {
            pool,
            commit_conn: Arc::new(Mutex::new(commit_conn)),
            next_seq: Arc::new(AtomicU64::new(from_db(next).max(1))),
        })
    }

    /// Commits a batch on the writer connection, on a blocking thread (see
    /// `sqlite/commit.rs`). SQLite mailbox sizes are counted by that connection itself.
    pub(crate) async fn commit(
        &self,
        batch: Arc<WriteBatch>,
        limits: StoreLimits,
    ) -> Result<Vec<Vec<Committed>>, StoreError> {
        let conn = self.commit_conn.clone();
        let next_seq = self.next_seq.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = conn.lock().unwrap_or_else(|e| e.into_inner());
            conn.commit(&batch, limits, &next_seq)
        })
        .await
        .map_err(|_| StoreError::CommitThread)?
    }

    /// Forgets the counted mailbox sizes (after rows were removed behind the writer's back,
    /// by the expiry sweep).
    pub(crate) fn forget_counts(&self) {
        let mut conn = self.commit_conn.lock().unwrap_or_else(|e| e.into_inner());
        conn.counts.clear();
    }
}

shared_reads!(SqliteStore, Sqlite);
