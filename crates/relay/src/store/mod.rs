//! Durable mailboxes: SQLite (embedded default) or PostgreSQL (scale-out).
//!
//! All writes go through one writer task per process, which hands this module a whole batch
//! of sends, acks and presence updates to commit in one transaction (group commit). The
//! commit's rules (dedup, the mailbox limit, group payloads stored once, ack release) are
//! decided once, without a database, in `plan.rs`; `commit.rs` runs its phases, and each
//! back end performs them with its own statements (`sqlite/commit.rs`: cached single-row
//! statements on a blocking thread; `postgres/commit.rs`: multi-row statements, each a round
//! trip). Reads and the rarer writes run the same SQL text on both back ends (`reads.rs`).

mod commit;
mod counts;
mod plan;
mod postgres;
mod reads;
mod sqlite;
#[cfg(test)]
mod tests;

use std::sync::Arc;

pub(crate) use counts::MailboxCounts;
pub(crate) use postgres::PgStore;
pub(crate) use sqlite::SqliteStore;

use crate::wire::{Delivery, DeviceAddress, SendStatus, UserId};

/// Storage failure. Details are logged by the caller, never sent to clients.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database driver failed.
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    /// SQLite failed in the group commit.
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// Migrations failed.
    #[error("migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The database URL or options are not usable.
    #[error("configuration: {0}")]
    Config(String),
    /// A stored address breaks the user-id rule (the database was edited by hand).
    #[error("stored address is invalid: {0}")]
    StoredAddress(#[from] e2ee_encoding::AddressError),
    /// The database handed out fewer (or more) sequence numbers than the commit needs.
    #[error("sequence allocation returned {got} numbers for {wanted} rows")]
    SequenceAllocation {
        /// Rows to store.
        wanted: usize,
        /// Numbers received.
        got: usize,
    },
    /// The SQLite group commit's blocking thread panicked or was cancelled.
    #[error("group commit thread failed")]
    CommitThread,
    /// A broken internal invariant; nothing was committed.
    #[error("internal: {0}")]
    Internal(&'static str),
}

/// An envelope accepted from a sender, about to be stored.
#[derive(Debug, Clone)]
pub(crate) struct NewEnvelope {
    /// Authenticated sender.
    pub(crate) sender: DeviceAddress,
    /// Sender-chosen id.
    pub(crate) msg_id: u64,
    /// Flag bits.
    pub(crate) flags: u8,
    /// Recipient devices (deduplicated by the caller).
    pub(crate) recipients: Vec<DeviceAddress>,
    /// Ciphertext, shared with the in-memory deliveries.
    pub(crate) payload: Arc<[u8]>,
    /// Acceptance time, unix ms.
    pub(crate) now_ms: u64,
}

/// What one committed batch produced for one envelope.
#[derive(Debug, Clone)]
pub(crate) struct Committed {
    /// Outcome reported to the sender.
    pub(crate) status: SendStatus,
    /// Mailbox rows created: (recipient, seq).
    pub(crate) stored: Vec<(DeviceAddress, u64)>,
}

/// One group commit's worth of work.
#[derive(Debug, Default)]
pub(crate) struct WriteBatch {
    /// Sends, each a list of envelopes (one `SEND` frame).
    pub(crate) sends: Vec<Vec<NewEnvelope>>,
    /// Acks: device, sequence numbers.
    pub(crate) acks: Vec<(DeviceAddress, Vec<u64>)>,
    /// Presence: device, last seen (unix ms).
    pub(crate) seen: Vec<(DeviceAddress, u64)>,
}

impl WriteBatch {
    /// One outcome per envelope, each `Duplicate` until the commit stores it.
    fn outcomes_before_dedup(&self) -> Vec<Vec<Committed>> {
        self.sends
            .iter()
            .map(|envs| {
                envs.iter()
                    .map(|_| Committed {
                        status: SendStatus::Duplicate,
                        stored: Vec::new(),
                    })
                    .collect()
            })
            .collect()
    }
}

/// Bounds the store applies while committing.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StoreLimits {
    /// Most rows per mailbox.
    pub(crate) max_mailbox: u64,
    /// Envelope lifetime in ms.
    pub(crate) ttl_ms: u64,
    /// How long a (sender, msg id) pair deduplicates retries, in ms (at most `ttl_ms`).
    pub(crate) dedup_ms: u64,
}

/// How hard SQLite commits (clap: `--relay-sqlite-sync full|normal`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SqliteSync {
    /// Every commit fsyncs the WAL: durable against power loss.
    Full,
    /// Durable against process crashes only (the OS may lose the last commits on power loss).
    Normal,
}

impl SqliteSync {
    /// The `PRAGMA synchronous` value.
    pub(crate) fn pragma(self) -> &'static str {
        match self {
            SqliteSync::Full => "FULL",
            SqliteSync::Normal => "NORMAL",
        }
    }
}

/// The configured back end.
#[derive(Debug, Clone)]
pub(crate) enum Store {
    /// Embedded SQLite file (WAL).
    Sqlite(SqliteStore),
    /// PostgreSQL.
    Postgres(PgStore),
}

impl Store {
    /// Connects to `url` (`sqlite://path` or `postgres://...`) and runs migrations.
    /// `pg_schema` selects the PostgreSQL schema (created if missing).
    pub(crate) async fn open(
        url: &str,
        pg_schema: &str,
        sqlite_sync: SqliteSync,
    ) -> Result<Self, StoreError> {
        if url.starts_with("sqlite:") {
            Ok(Store::Sqlite(SqliteStore::open(url, sqlite_sync).await?))
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Ok(Store::Postgres(PgStore::open(url, pg_schema).await?))
        } else {
            Err(StoreError::Config(
                "database URL must start with sqlite: or postgres:".into(),
            ))
        }
    }

    /// Commits a batch in one transaction; returns one `Vec<Committed>` per send. Each back
    /// end keeps its own cache of mailbox sizes for the mailbox limit.
    pub(crate) async fn commit(
        &self,
        batch: &Arc<WriteBatch>,
        limits: StoreLimits,
    ) -> Result<Vec<Vec<Committed>>, StoreError> {
        match self {
            Store::Sqlite(s) => s.commit(batch.clone(), limits).await,
            Store::Postgres(s) => s.commit(batch, limits).await,
        }
    }

    /// Up to `limit` envelopes of `device` with `seq > after`, oldest first, unexpired.
    pub(crate) async fn fetch(
        &self,
        device: &DeviceAddress,
        after: u64,
        limit: usize,
        now_ms: u64,
    ) -> Result<Vec<Delivery>, StoreError> {
        match self {
            Store::Sqlite(s) => s.fetch(device, after, limit, now_ms).await,
            Store::Postgres(s) => s.fetch(device, after, limit, now_ms).await,
        }
    }

    /// Deletes everything whose TTL has passed. Returns the number of mailbox rows removed.
    pub(crate) async fn expire(&self, now_ms: u64) -> Result<u64, StoreError> {
        match self {
            Store::Sqlite(s) => {
                let removed = s.expire(now_ms).await;
                s.forget_counts();
                removed
            }
            Store::Postgres(s) => {
                let removed = s.expire(now_ms).await;
                s.forget_counts().await;
                removed
            }
        }
    }

    /// Known devices of a user with their last-seen time (unix ms).
    pub(crate) async fn last_seen(&self, user: &UserId) -> Result<Vec<(u32, u64)>, StoreError> {
        match self {
            Store::Sqlite(s) => s.last_seen(user).await,
            Store::Postgres(s) => s.last_seen(user).await,
        }
    }

    /// Replaces who (besides `owner`'s own devices) may read `owner`'s presence.
    pub(crate) async fn set_presence_allow(
        &self,
        owner: &UserId,
        viewers: &[UserId],
    ) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(s) => s.set_presence_allow(owner, viewers).await,
            Store::Postgres(s) => s.set_presence_allow(owner, viewers).await,
        }
    }

    /// Whether `owner` allowed `viewer` to read its presence.
    pub(crate) async fn presence_allowed(
        &self,
        owner: &UserId,
        viewer: &UserId,
    ) -> Result<bool, StoreError> {
        match self {
            Store::Sqlite(s) => s.presence_allowed(owner, viewer).await,
            Store::Postgres(s) => s.presence_allowed(owner, viewer).await,
        }
    }

    /// Number of rows in a device's mailbox (tests and operations).
    pub(crate) async fn mailbox_len(&self, device: &DeviceAddress) -> Result<u64, StoreError> {
        match self {
            Store::Sqlite(s) => s.count(device).await,
            Store::Postgres(s) => s.count(device).await,
        }
    }
}

/// Reinterprets the u64s of the wire as the i64s databases store (bit-preserving).
pub(crate) fn to_db(v: u64) -> i64 {
    v as i64
}

/// Inverse of [`to_db`].
pub(crate) fn from_db(v: i64) -> u64 {
    v as u64
}

/// Most bind parameters per statement, well under both SQLite's and PostgreSQL's limits.
const MAX_BINDS: usize = 30_000;
