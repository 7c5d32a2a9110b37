//! Durable mailboxes: SQLite (embedded default) or PostgreSQL (scale-out).
//!
//! Reads and the rarer writes run the same SQL text on both back ends through
//! `sqlx::QueryBuilder` (which writes each database's own placeholders); the `store_ops!`
//! macro stamps that one code path out for each database type, so there is no `query!`
//! checked against only one of them. The group commit differs: PostgreSQL gets batched
//! multi-row statements (`batched_commit!`, each statement a round trip), SQLite a blocking
//! call with cached single-row statements (`sqlite_commit.rs`, no round trips to save).
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

use crate::wire::{Address, Delivery, SendStatus};

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
}

/// An envelope accepted from a sender, about to be stored.
#[derive(Debug, Clone)]
pub struct NewEnvelope {
    /// Authenticated sender.
    pub sender: Address,
    /// Sender-chosen id.
    pub msg_id: u64,
    /// Flag bits.
    pub flags: u8,
    /// Recipient devices (deduplicated by the caller).
    pub recipients: Vec<Address>,
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
    pub stored: Vec<(Address, u64)>,
}

/// One group commit's worth of work.
#[derive(Debug, Default)]
pub struct WriteBatch {
    /// Sends, each a list of envelopes (one `SEND` frame).
    pub sends: Vec<Vec<NewEnvelope>>,
    /// Acks: device, sequence numbers.
    pub acks: Vec<(Address, Vec<u64>)>,
    /// Presence: device, last seen (unix ms).
    pub seen: Vec<(Address, u64)>,
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
    counts: HashMap<Address, (u64, Instant)>,
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
    fn get(&self, a: &Address) -> Option<u64> {
        self.counts
            .get(a)
            .filter(|(_, t)| t.elapsed() < self.max_age)
            .map(|(n, _)| *n)
    }
    fn set(&mut self, a: &Address, n: u64) {
        self.counts.insert(a.clone(), (n, Instant::now()));
    }
    fn add(&mut self, a: &Address, delta: i64) {
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

    /// Commits a batch in one transaction; returns one `Vec<Committed>` per send. `counts`
    /// is the writer's cache of mailbox sizes (PostgreSQL; the SQLite commit connection
    /// keeps its own).
    pub async fn commit(
        &self,
        batch: &Arc<WriteBatch>,
        counts: &mut MailboxCounts,
        limits: StoreLimits,
    ) -> Result<Vec<Vec<Committed>>, StoreError> {
        match self {
            Store::Sqlite(s) => s.commit(batch.clone(), limits).await,
            Store::Postgres(s) => s.commit(batch, counts, limits).await,
        }
    }

    /// Up to `limit` envelopes of `device` with `seq > after`, oldest first, unexpired.
    pub async fn fetch(
        &self,
        device: &Address,
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
            Store::Postgres(s) => s.expire(now_ms).await,
        }
    }

    /// Known devices of a user with their last-seen time (unix ms).
    pub async fn last_seen(&self, user_id: &str) -> Result<Vec<(u32, u64)>, StoreError> {
        match self {
            Store::Sqlite(s) => s.last_seen(user_id).await,
            Store::Postgres(s) => s.last_seen(user_id).await,
        }
    }

    /// Replaces who (besides `owner`'s own devices) may read `owner`'s presence.
    pub async fn set_presence_allow(
        &self,
        owner: &str,
        viewers: &[String],
    ) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(s) => s.set_presence_allow(owner, viewers).await,
            Store::Postgres(s) => s.set_presence_allow(owner, viewers).await,
        }
    }

    /// Whether `owner` allowed `viewer` to read its presence.
    pub async fn presence_allowed(&self, owner: &str, viewer: &str) -> Result<bool, StoreError> {
        match self {
            Store::Sqlite(s) => s.presence_allowed(owner, viewer).await,
            Store::Postgres(s) => s.presence_allowed(owner, viewer).await,
        }
    }

    /// Number of rows in a device's mailbox (tests and operations).
    pub async fn mailbox_len(&self, device: &Address) -> Result<u64, StoreError> {
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

/// The one code path, stamped out per database type. `$store` must have a `pool` field and
/// an `alloc_seqs(&self, tx, n)` method.
macro_rules! store_ops {
    ($store:ty, $db:ty) => {
        impl $store {
            pub(crate) async fn count(
                &self,
                device: &$crate::wire::Address,
            ) -> Result<u64, $crate::store::StoreError> {
                let mut conn = self.pool.acquire().await?;
                Self::count_on(&mut conn, device).await
            }

            async fn count_on(
                conn: &mut <$db as sqlx::Database>::Connection,
                device: &$crate::wire::Address,
            ) -> Result<u64, $crate::store::StoreError> {
                use sqlx::Row as _;
                let mut qb = sqlx::QueryBuilder::<$db>::new(
                    "SELECT COUNT(*) FROM mailbox WHERE user_id = ",
                );
                qb.push_bind(device.user_id.as_str());
                qb.push(" AND device_id = ");
                qb.push_bind(i64::from(device.device_id));
                let row = qb.build().fetch_one(&mut *conn).await?;
                let n: i64 = row.try_get(0)?;
                Ok($crate::store::from_db(n))
            }

            pub(crate) async fn fetch(
                &self,
                device: &$crate::wire::Address,
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
                qb.push_bind(device.user_id.as_str());
                qb.push(" AND m.device_id = ");
                qb.push_bind(i64::from(device.device_id));
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
                        sender: $crate::wire::Address {
                            user_id: row.try_get(3)?,
                            device_id: sender_device as u32,
                        },
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
                owner: &str,
                viewers: &[String],
            ) -> Result<(), $crate::store::StoreError> {
                let mut tx = self.pool.begin().await?;
                let mut qb =
                    sqlx::QueryBuilder::<$db>::new("DELETE FROM presence_allow WHERE owner = ");
                qb.push_bind(owner);
                qb.build().execute(&mut *tx).await?;
                if !viewers.is_empty() {
                    let mut qb = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO presence_allow (owner, viewer) ",
                    );
                    qb.push_values(viewers, |mut b, v| {
                        b.push_bind(owner).push_bind(v.as_str());
                    });
                    qb.push(" ON CONFLICT DO NOTHING");
                    qb.build().execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(())
            }

            pub(crate) async fn presence_allowed(
                &self,
                owner: &str,
                viewer: &str,
            ) -> Result<bool, $crate::store::StoreError> {
                let mut qb = sqlx::QueryBuilder::<$db>::new(
                    "SELECT 1 FROM presence_allow WHERE owner = ",
                );
                qb.push_bind(owner);
                qb.push(" AND viewer = ");
                qb.push_bind(viewer);
                Ok(qb.build().fetch_optional(&self.pool).await?.is_some())
            }

            pub(crate) async fn last_seen(
                &self,
                user_id: &str,
            ) -> Result<Vec<(u32, u64)>, $crate::store::StoreError> {
                use sqlx::Row as _;
                let mut qb = sqlx::QueryBuilder::<$db>::new(
                    "SELECT device_id, seen_ms FROM last_seen WHERE user_id = ",
                );
                qb.push_bind(user_id);
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

/// The group commit as batched multi-row statements: the right shape for PostgreSQL, where
/// every statement is a network round trip. (SQLite has its own, `sqlite_commit.rs`.)
macro_rules! batched_commit {
    ($store:ty, $db:ty) => {
        impl $store {
            pub(crate) async fn commit(
                &self,
                batch: &$crate::store::WriteBatch,
                counts: &mut $crate::store::MailboxCounts,
                limits: $crate::store::StoreLimits,
            ) -> Result<Vec<Vec<$crate::store::Committed>>, $crate::store::StoreError> {
                use std::collections::{HashMap, HashSet};

                use sqlx::Row as _;

                use $crate::{
                    store::{MAX_BINDS, from_db, to_db},
                    wire::SendStatus,
                };

                let mut tx = self.pool.begin().await?;

                // 1. Acks: delete the rows, then release group payload references. One
                //    statement for every device's acks (not one per device): the join keeps
                //    each device to rows of its own mailbox, and SQLite still finds the rows
                //    by primary key.
                let mut released: HashMap<i64, i64> = HashMap::new();
                let acks: Vec<(&$crate::wire::Address, u64)> = batch
                    .acks
                    .iter()
                    .flat_map(|(device, seqs)| seqs.iter().map(move |s| (device, *s)))
                    .collect();
                for chunk in acks.chunks(MAX_BINDS / 3) {
                    let mut qb = sqlx::QueryBuilder::<$db>::new(
                        "DELETE FROM mailbox WHERE seq IN (SELECT v.column1 FROM (",
                    );
                    qb.push_values(chunk, |mut b, (device, seq)| {
                        b.push_bind(to_db(*seq))
                            .push_bind(device.user_id.as_str())
                            .push_bind(i64::from(device.device_id));
                    });
                    qb.push(
                        ") AS v JOIN mailbox o ON o.seq = v.column1 AND o.user_id = v.column2 \
                         AND o.device_id = v.column3) RETURNING user_id, device_id, payload_id",
                    );
                    for row in qb.build().fetch_all(&mut *tx).await? {
                        let user_id: String = row.try_get(0)?;
                        let device_id: i64 = row.try_get(1)?;
                        counts.add(&$crate::wire::Address::new(user_id, device_id as u32), -1);
                        let pid: Option<i64> = row.try_get(2)?;
                        if let Some(pid) = pid {
                            *released.entry(pid).or_default() += 1;
                        }
                    }
                }
                if !released.is_empty() {
                    for (pid, n) in &released {
                        let mut qb =
                            sqlx::QueryBuilder::<$db>::new("UPDATE payloads SET refs = refs - ");
                        qb.push_bind(*n);
                        qb.push(" WHERE id = ");
                        qb.push_bind(*pid);
                        qb.build().execute(&mut *tx).await?;
                    }
                    let ids: Vec<i64> = released.keys().copied().collect();
                    for chunk in ids.chunks(MAX_BINDS) {
                        let mut qb =
                            sqlx::QueryBuilder::<$db>::new("DELETE FROM payloads WHERE refs <= 0 AND id IN (");
                        let mut sep = qb.separated(", ");
                        for id in chunk {
                            sep.push_bind(*id);
                        }
                        qb.push(")");
                        qb.build().execute(&mut *tx).await?;
                    }
                }

                // 2. Presence.
                for chunk in batch.seen.chunks(MAX_BINDS / 3) {
                    let mut qb = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO last_seen (user_id, device_id, seen_ms) ",
                    );
                    qb.push_values(chunk, |mut b, (a, ms)| {
                        b.push_bind(a.user_id.as_str())
                            .push_bind(i64::from(a.device_id))
                            .push_bind(to_db(*ms));
                    });
                    qb.push(
                        " ON CONFLICT (user_id, device_id) DO UPDATE SET seen_ms = excluded.seen_ms",
                    );
                    qb.build().execute(&mut *tx).await?;
                }

                // 3. Deduplicate sends on (sender, msg_id): first within the batch, then
                //    against the table. The dedup row outlives the mailbox rows (dedup window).
                let mut results = batch.outcomes_before_dedup();
                let mut seen_keys: HashSet<(&str, u32, u64)> = HashSet::new();
                let mut candidates: Vec<(usize, usize)> = Vec::new();
                for (si, envs) in batch.sends.iter().enumerate() {
                    for (ei, e) in envs.iter().enumerate() {
                        if seen_keys.insert((e.sender.user_id.as_str(), e.sender.device_id, e.msg_id)) {
                            candidates.push((si, ei));
                        }
                    }
                }
                let mut fresh: HashSet<(String, u32, u64)> = HashSet::new();
                for chunk in candidates.chunks(MAX_BINDS / 4) {
                    let mut qb = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO dedup (sender_user, sender_device, msg_id, expires_at) ",
                    );
                    qb.push_values(chunk, |mut b, (si, ei)| {
                        let e = &batch.sends[*si][*ei];
                        b.push_bind(e.sender.user_id.as_str())
                            .push_bind(i64::from(e.sender.device_id))
                            .push_bind(to_db(e.msg_id))
                            .push_bind(to_db(e.now_ms.saturating_add(limits.dedup_ms)));
                    });
                    // A pair whose window has passed counts as new even before the expiry
                    // sweep removed it.
                    let now = chunk
                        .iter()
                        .map(|(si, ei)| batch.sends[*si][*ei].now_ms)
                        .min()
                        .unwrap_or(0);
                    qb.push(
                        " ON CONFLICT (sender_user, sender_device, msg_id) DO UPDATE \
                         SET expires_at = excluded.expires_at WHERE dedup.expires_at <= ",
                    );
                    qb.push_bind(to_db(now));
                    qb.push(" RETURNING sender_user, sender_device, msg_id");
                    for row in qb.build().fetch_all(&mut *tx).await? {
                        let u: String = row.try_get(0)?;
                        let d: i64 = row.try_get(1)?;
                        let m: i64 = row.try_get(2)?;
                        fresh.insert((u, d as u32, from_db(m)));
                    }
                }

                // 4. Mailbox limits, sequence numbers, rows.
                struct Row<'a> {
                    seq: u64,
                    to: &'a $crate::wire::Address,
                    env: &'a $crate::store::NewEnvelope,
                    payload_id: Option<i64>,
                }
                let mut rows: Vec<Row<'_>> = Vec::new();
                let mut group_payloads: Vec<(i64, i64, &$crate::store::NewEnvelope)> = Vec::new();
                let mut refused: Vec<&$crate::store::NewEnvelope> = Vec::new();
                let mut pending: Vec<(usize, usize, Vec<&$crate::wire::Address>)> = Vec::new();
                let mut total = 0usize;
                for (si, ei) in &candidates {
                    let e = &batch.sends[*si][*ei];
                    let key = (e.sender.user_id.clone(), e.sender.device_id, e.msg_id);
                    if !fresh.contains(&key) {
                        continue;
                    }
                    let mut accepted = Vec::with_capacity(e.recipients.len());
                    for to in &e.recipients {
                        let n = match counts.get(to) {
                            Some(n) => n,
                            None => {
                                let n = Self::count_on(&mut tx, to).await?;
                                counts.set(to, n);
                                n
                            }
                        };
                        if n < limits.max_mailbox {
                            counts.add(to, 1);
                            accepted.push(to);
                        }
                    }
                    if accepted.is_empty() {
                        refused.push(e);
                        results[*si][*ei].status = SendStatus::MailboxFull;
                        continue;
                    }
                    results[*si][*ei].status = if accepted.len() == e.recipients.len() {
                        SendStatus::Stored
                    } else {
                        SendStatus::PartialMailboxFull
                    };
                    total += accepted.len();
                    pending.push((*si, *ei, accepted));
                }
                let seqs = self.alloc_seqs(&mut tx, total).await?;
                let mut next = seqs.into_iter();
                for (si, ei, accepted) in pending {
                    let e = &batch.sends[si][ei];
                    let mut payload_id = None;
                    for to in accepted {
                        let Some(seq) = next.next() else {
                            return Err($crate::store::StoreError::Config(
                                "sequence allocation returned too few numbers".into(),
                            ));
                        };
                        if e.recipients.len() > 1 && payload_id.is_none() {
                            // The group payload takes the id of its first mailbox row.
                            payload_id = Some(to_db(seq));
                            group_payloads.push((to_db(seq), 0, e));
                        }
                        if let Some((_, refs, _)) = group_payloads.last_mut().filter(|_| payload_id.is_some()) {
                            *refs += 1;
                        }
                        results[si][ei].stored.push((to.clone(), seq));
                        rows.push(Row {
                            seq,
                            to,
                            env: e,
                            payload_id,
                        });
                    }
                }
                for chunk in group_payloads.chunks(MAX_BINDS / 4) {
                    let mut qb = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO payloads (id, refs, expires_at, body) ",
                    );
                    qb.push_values(chunk, |mut b, (id, refs, e)| {
                        b.push_bind(*id)
                            .push_bind(*refs)
                            .push_bind(to_db(e.now_ms.saturating_add(limits.ttl_ms)))
                            .push_bind(&e.payload[..]);
                    });
                    qb.build().execute(&mut *tx).await?;
                }
                for chunk in rows.chunks(MAX_BINDS / 11) {
                    let mut qb = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO mailbox (seq, user_id, device_id, sender_user, sender_device, \
                         msg_id, flags, created_ms, expires_at, body, payload_id) ",
                    );
                    qb.push_values(chunk, |mut b, r| {
                        let e = r.env;
                        b.push_bind(to_db(r.seq))
                            .push_bind(r.to.user_id.as_str())
                            .push_bind(i64::from(r.to.device_id))
                            .push_bind(e.sender.user_id.as_str())
                            .push_bind(i64::from(e.sender.device_id))
                            .push_bind(to_db(e.msg_id))
                            .push_bind(i64::from(e.flags))
                            .push_bind(to_db(e.now_ms))
                            .push_bind(to_db(e.now_ms.saturating_add(limits.ttl_ms)))
                            .push_bind(if r.payload_id.is_some() { None } else { Some(&e.payload[..]) })
                            .push_bind(r.payload_id);
                    });
                    qb.build().execute(&mut *tx).await?;
                }
                // An envelope refused everywhere must not block its own retry as a duplicate.
                for e in refused {
                    let mut qb = sqlx::QueryBuilder::<$db>::new(
                        "DELETE FROM dedup WHERE sender_user = ",
                    );
                    qb.push_bind(e.sender.user_id.as_str());
                    qb.push(" AND sender_device = ");
                    qb.push_bind(i64::from(e.sender.device_id));
                    qb.push(" AND msg_id = ");
                    qb.push_bind(to_db(e.msg_id));
                    qb.build().execute(&mut *tx).await?;
                }
                self.persist_seq(&mut tx).await?;
                tx.commit().await?;
                Ok(results)
            }
        }
    };
}
pub(crate) use batched_commit;
