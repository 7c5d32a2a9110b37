//! Durable mailboxes: SQLite (embedded default) or PostgreSQL (scale-out).
//!
//! Reads and the rarer writes run the same SQL text on both back ends through
//! `sqlx::QueryBuilder` (which writes each database's own placeholders); the `store_ops!`
//! macro stamps that one code path out for each database type, so there is no `query!`
//! checked against only one of them. The group commit differs: PostgreSQL gets batched
//! multi-row statements (`postgres/commit.rs`, each statement a round trip), SQLite a
//! blocking call with cached single-row statements (`sqlite_commit.rs`, no round trips to
//! save).
//!
//! All writes go through one writer task per process, which hands this module a whole batch
//! of sends, acks and presence updates to commit in one transaction (group commit).

mod postgres;
mod sqlite;
mod sqlite_commit;

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

pub use postgres::PgStore;
pub use sqlite::SqliteStore;

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
}

/// An envelope accepted from a sender, about to be stored.
#[derive(Debug, Clone)]
pub struct NewEnvelope {
    /// Authenticated sender.
    pub sender: DeviceAddress,
    /// Sender-chosen id.
    pub msg_id: u64,
    /// Flag bits.
    pub flags: u8,
    /// Recipient devices (deduplicated by the caller).
    pub recipients: Vec<DeviceAddress>,
    /// Ciphertext, shared with the in-memory deliveries.
    pub payload: Arc<[u8]>,
    /// Acceptance time, unix ms.
    pub now_ms: u64,
}

/// What one committed batch produced for one envelope.
#[derive(Debug, Clone)]
pub struct Committed {
    /// Outcome reported to the sender.
    pub status: SendStatus,
    /// Mailbox rows created: (recipient, seq).
    pub stored: Vec<(DeviceAddress, u64)>,
}

/// One group commit's worth of work.
#[derive(Debug, Default)]
pub struct WriteBatch {
    /// Sends, each a list of envelopes (one `SEND` frame).
    pub sends: Vec<Vec<NewEnvelope>>,
    /// Acks: device, sequence numbers.
    pub acks: Vec<(DeviceAddress, Vec<u64>)>,
    /// Presence: device, last seen (unix ms).
    pub seen: Vec<(DeviceAddress, u64)>,
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
pub struct StoreLimits {
    /// Most rows per mailbox.
    pub max_mailbox: u64,
    /// Envelope lifetime in ms.
    pub ttl_ms: u64,
    /// How long a (sender, msg id) pair deduplicates retries, in ms (at most `ttl_ms`).
    pub dedup_ms: u64,
}

/// Mailbox sizes known to the writer, so checking the mailbox limit does not cost a
/// `COUNT(*)` per envelope. Entries older than `max_age` are recounted, which keeps the
/// numbers honest when several relay nodes write to one PostgreSQL database.
#[derive(Debug)]
pub struct MailboxCounts {
    counts: HashMap<DeviceAddress, (u64, Instant)>,
    max_age: Duration,
}

impl MailboxCounts {
    /// Empty cache; entries are recounted after `max_age`.
    pub fn new(max_age: Duration) -> Self {
        Self {
            counts: HashMap::new(),
            max_age,
        }
    }
    fn get(&self, a: &DeviceAddress) -> Option<u64> {
        self.counts
            .get(a)
            .filter(|(_, t)| t.elapsed() < self.max_age)
            .map(|(n, _)| *n)
    }
    fn set(&mut self, a: &DeviceAddress, n: u64) {
        self.counts.insert(a.clone(), (n, Instant::now()));
    }
    /// Whether `a`'s mailbox must be counted (unknown or stale) before [`Self::admit`].
    fn needs_count(&self, a: &DeviceAddress) -> bool {
        self.get(a).is_none()
    }
    /// The mailbox limit: the recipients whose mailbox has room, each counted one envelope
    /// fuller. Every recipient must have been counted first; one that was not is refused.
    fn admit<'a>(
        &mut self,
        recipients: &'a [DeviceAddress],
        max_mailbox: u64,
    ) -> Vec<&'a DeviceAddress> {
        let mut accepted = Vec::with_capacity(recipients.len());
        for to in recipients {
            if let Some((n, _)) = self.counts.get_mut(to)
                && *n < max_mailbox
            {
                *n += 1;
                accepted.push(to);
            }
        }
        accepted
    }
    fn add(&mut self, a: &DeviceAddress, delta: i64) {
        if let Some((n, _)) = self.counts.get_mut(a) {
            *n = n.saturating_add_signed(delta);
        }
    }
    /// Forgets everything (after a failed transaction or an expiry sweep).
    pub fn clear(&mut self) {
        self.counts.clear();
    }
    /// Drops entries nobody touched for a while, bounding memory.
    pub fn prune(&mut self) {
        let max_age = self.max_age;
        self.counts.retain(|_, (_, t)| t.elapsed() < max_age);
    }
}

/// The configured back end.
#[derive(Debug, Clone)]
pub enum Store {
    /// Embedded SQLite file (WAL).
    Sqlite(SqliteStore),
    /// PostgreSQL.
    Postgres(PgStore),
}

impl Store {
    /// Connects to `url` (`sqlite://path` or `postgres://...`) and runs migrations.
    /// `pg_schema` selects the PostgreSQL schema (created if missing).
    pub async fn open(
        url: &str,
        pg_schema: &str,
        sqlite_full_sync: bool,
    ) -> Result<Self, StoreError> {
        if url.starts_with("sqlite:") {
            Ok(Store::Sqlite(
                SqliteStore::open(url, sqlite_full_sync).await?,
            ))
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
    pub async fn commit(
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
    pub async fn fetch(
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
    pub async fn expire(&self, now_ms: u64) -> Result<u64, StoreError> {
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
    pub async fn last_seen(&self, user: &UserId) -> Result<Vec<(u32, u64)>, StoreError> {
        match self {
            Store::Sqlite(s) => s.last_seen(user).await,
            Store::Postgres(s) => s.last_seen(user).await,
        }
    }

    /// Replaces who (besides `owner`'s own devices) may read `owner`'s presence.
    pub async fn set_presence_allow(
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
    pub async fn presence_allowed(
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
    pub async fn mailbox_len(&self, device: &DeviceAddress) -> Result<u64, StoreError> {
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

/// The one code path, stamped out per database type. `$store` must have a `pool` field.
macro_rules! store_ops {
    ($store:ty, $db:ty) => {
        impl $store {
            pub(crate) async fn count(
                &self,
                device: &$crate::wire::DeviceAddress,
            ) -> Result<u64, $crate::store::StoreError> {
                let mut conn = self.pool.acquire().await?;
                Self::count_on(&mut conn, device).await
            }

            async fn count_on(
                conn: &mut <$db as sqlx::Database>::Connection,
                device: &$crate::wire::DeviceAddress,
            ) -> Result<u64, $crate::store::StoreError> {
                use sqlx::Row as _;
                let mut qb = sqlx::QueryBuilder::<$db>::new(
                    "SELECT COUNT(*) FROM mailbox WHERE user_id = ",
                );
                qb.push_bind(device.user_id());
                qb.push(" AND device_id = ");
                qb.push_bind(i64::from(device.device));
                let row = qb.build().fetch_one(&mut *conn).await?;
                let n: i64 = row.try_get(0)?;
                Ok($crate::store::from_db(n))
            }

            pub(crate) async fn fetch(
                &self,
                device: &$crate::wire::DeviceAddress,
                after: u64,
                limit: usize,
                now_ms: u64,
            ) -> Result<Vec<$crate::wire::Delivery>, $crate::store::StoreError> {
                use sqlx::Row as _;

                use $crate::store::{from_db, to_db};

                let mut qb = sqlx::QueryBuilder::<$db>::new(
                    "SELECT m.seq, m.flags, m.created_ms, m.sender_user, m.sender_device, m.msg_id, \
                     COALESCE(m.body, p.body) FROM mailbox m LEFT JOIN payloads p ON p.id = m.payload_id \
                     WHERE m.user_id = ",
                );
                qb.push_bind(device.user_id());
                qb.push(" AND m.device_id = ");
                qb.push_bind(i64::from(device.device));
                qb.push(" AND m.seq > ");
                qb.push_bind(to_db(after));
                qb.push(" AND m.expires_at > ");
                qb.push_bind(to_db(now_ms));
                qb.push(" ORDER BY m.seq LIMIT ");
                qb.push_bind(limit as i64);
                let rows = qb.build().fetch_all(&self.pool).await?;
                let mut out = Vec::with_capacity(rows.len());
                for row in rows {
                    let body: Option<Vec<u8>> = row.try_get(6)?;
                    let Some(body) = body else { continue };
                    let flags: i64 = row.try_get(1)?;
                    let sender_device: i64 = row.try_get(4)?;
                    out.push($crate::wire::Delivery {
                        seq: from_db(row.try_get(0)?),
                        flags: flags as u8,
                        server_ts_ms: from_db(row.try_get(2)?),
                        sender: $crate::wire::DeviceAddress::new(
                            row.try_get::<String, _>(3)?,
                            sender_device as u32,
                        )?,
                        msg_id: from_db(row.try_get(5)?),
                        payload: body.into(),
                    });
                }
                Ok(out)
            }

            pub(crate) async fn expire(&self, now_ms: u64) -> Result<u64, $crate::store::StoreError> {
                let now = $crate::store::to_db(now_ms);
                let mut tx = self.pool.begin().await?;
                // The mailbox has no index on expires_at (it would cost two B-tree writes per
                // message). Rows expire in sequence order when the TTL is constant, so the
                // sweep deletes the expired rows below the oldest unexpired one: a primary-key
                // range, not a scan of every waiting envelope while the write lock is held. An
                // expired row above it (after the TTL was lowered) is never delivered (reads
                // filter on expires_at) and goes in a later sweep.
                let mut qb = sqlx::QueryBuilder::<$db>::new(
                    "DELETE FROM mailbox WHERE expires_at <= ",
                );
                qb.push_bind(now);
                qb.push(" AND seq < COALESCE((SELECT seq FROM mailbox WHERE expires_at > ");
                qb.push_bind(now);
                qb.push(" ORDER BY seq LIMIT 1), 9223372036854775807)");
                let removed = qb.build().execute(&mut *tx).await?.rows_affected();
                for table in ["payloads", "dedup"] {
                    let mut qb = sqlx::QueryBuilder::<$db>::new(format!(
                        "DELETE FROM {table} WHERE expires_at <= "
                    ));
                    qb.push_bind(now);
                    qb.build().execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(removed)
            }

            pub(crate) async fn set_presence_allow(
                &self,
                owner: &$crate::wire::UserId,
                viewers: &[$crate::wire::UserId],
            ) -> Result<(), $crate::store::StoreError> {
                let mut tx = self.pool.begin().await?;
                let mut qb =
                    sqlx::QueryBuilder::<$db>::new("DELETE FROM presence_allow WHERE owner = ");
                qb.push_bind(owner.as_str());
                qb.build().execute(&mut *tx).await?;
                if !viewers.is_empty() {
                    let mut qb = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO presence_allow (owner, viewer) ",
                    );
                    qb.push_values(viewers, |mut b, v| {
                        b.push_bind(owner.as_str()).push_bind(v.as_str());
                    });
                    qb.push(" ON CONFLICT DO NOTHING");
                    qb.build().execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(())
            }

            pub(crate) async fn presence_allowed(
                &self,
                owner: &$crate::wire::UserId,
                viewer: &$crate::wire::UserId,
            ) -> Result<bool, $crate::store::StoreError> {
                let mut qb = sqlx::QueryBuilder::<$db>::new(
                    "SELECT 1 FROM presence_allow WHERE owner = ",
                );
                qb.push_bind(owner.as_str());
                qb.push(" AND viewer = ");
                qb.push_bind(viewer.as_str());
                Ok(qb.build().fetch_optional(&self.pool).await?.is_some())
            }

            pub(crate) async fn last_seen(
                &self,
                user: &$crate::wire::UserId,
            ) -> Result<Vec<(u32, u64)>, $crate::store::StoreError> {
                use sqlx::Row as _;
                let mut qb = sqlx::QueryBuilder::<$db>::new(
                    "SELECT device_id, seen_ms FROM last_seen WHERE user_id = ",
                );
                qb.push_bind(user.as_str());
                qb.push(" ORDER BY device_id");
                let mut out = Vec::new();
                for row in qb.build().fetch_all(&self.pool).await? {
                    let d: i64 = row.try_get(0)?;
                    let s: i64 = row.try_get(1)?;
                    out.push((d as u32, $crate::store::from_db(s)));
                }
                Ok(out)
            }
        }
    };
}
pub(crate) use store_ops;
