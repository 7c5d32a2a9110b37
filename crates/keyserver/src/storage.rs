//! Storage: one schema, two back ends (SQLite embedded, PostgreSQL at scale).
//!
//! The back ends share almost every statement (sqlx binds `$1` positionally on both), so the
//! store is an enum whose methods run the same code against either pool through `on_pool!`;
//! only taking a bundle differs. A `query!` macro checked against one database could not
//! serve both, and a trait object would duplicate every shared statement for no gain.
//!
//! Atomic consumption: a one-time prekey leaves its table in a single
//! `DELETE ... WHERE key_id = (SELECT ... LIMIT 1) RETURNING encoded` statement. SQLite runs
//! writers one at a time, so the statement is atomic as a whole. On PostgreSQL the inner
//! `SELECT ... FOR UPDATE SKIP LOCKED` makes concurrent fetchers pick different rows instead
//! of racing for (and then missing) the same one, and the whole bundle (both deletes, the
//! last-resort fallback and the device's identity and signed prekey) is one statement with
//! data-modifying CTEs: one round trip and one commit per fetch. Either way a key is returned
//! by at most one `DELETE`, so it is served at most once.

use std::{path::Path, str::FromStr, time::Duration};

use e2ee_migrations::EmbeddedMigration;
use sqlx::{
    PgPool, Row, SqlitePool,
    migrate::Migrator,
    postgres::{PgConnectOptions, PgPoolOptions},
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
};

use e2ee_encoding::{DeviceAddress, UserId};

use crate::{error::KeyserverError, sqlite_hot_path::SqliteHotPath};

/// Declares the SQLite and PostgreSQL migration sets from one list: each migration has one
/// version and description and a file of that name under each dialect's directory.
macro_rules! migrations {
    ($($version:literal, $description:literal, $file:literal;)*) => {
        const SQLITE_MIGRATIONS: &[EmbeddedMigration] = &[$(EmbeddedMigration {
            version: $version,
            description: $description,
            sql: include_str!(concat!("../migrations/sqlite/", $file)),
        },)*];
        const POSTGRES_MIGRATIONS: &[EmbeddedMigration] = &[$(EmbeddedMigration {
            version: $version,
            description: $description,
            sql: include_str!(concat!("../migrations/postgres/", $file)),
        },)*];
    };
}

/// Most provisioning messages stored at once (each at most
/// `http::provisioning::MAX_PROVISIONING_MESSAGE_LEN` bytes, kept minutes): a bound on what
/// unauthenticated writers can make the server hold.
pub(crate) const MAX_PROVISIONING_MESSAGES: i64 = 10_000;

// Migration versions of the key server. They start high so that the key server and the
// relay can share one PostgreSQL database (and its `_sqlx_migrations` table) without their
// version numbers colliding; each migrator ignores the other's applied versions.
migrations! {
    4_000_001, "keyserver schema", "0001_keyserver.sql";
    4_000_002, "device bindings, one account per identity key", "0002_device_binding.sql";
    4_000_003, "removal tombstones, the key holder, enrolment times", "0003_removals.sql";
    4_000_004, "the provisioning channel for linking devices", "0004_provisioning.sql";
}

async fn migrator(set: &'static [EmbeddedMigration]) -> Result<Migrator, KeyserverError> {
    let mut migrator = e2ee_migrations::migrator(set).await?;
    migrator.set_ignore_missing(true);
    Ok(migrator)
}

/// A storage failure. Input problems never reach here: handlers validate first.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StoreError {
    /// A row with this key exists already.
    #[error("already exists")]
    Conflict,
    /// The device identity key is registered already (to this or another account).
    #[error("identity key already registered")]
    IdentityInUse,
    /// The upload would leave the device more than `limit` one-time prekeys of a kind.
    #[error("at most {limit} stored one-time prekeys of each kind per device")]
    PrekeyLimit {
        /// The per-device, per-kind limit.
        limit: i64,
    },
    /// The device (or its identity key) was removed from the account after the account
    /// signed the enrolment consent.
    #[error("the device was removed after this consent was signed")]
    RemovedAfterConsent,
    /// The provisioning channel holds as many messages as it may.
    #[error("the provisioning channel is full")]
    Full,
    /// The database failed.
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    /// The database failed on the SQLite fetch path.
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    /// The SQLite fetch path's thread is gone.
    #[error("SQLite fetch path: {0}")]
    HotPath(String),
}

fn conflict_or_db(e: sqlx::Error) -> StoreError {
    match e.as_database_error() {
        // PostgreSQL names the index; SQLite names the column.
        Some(db)
            if db.is_unique_violation()
                && (db.constraint() == Some("ks_devices_identity_key")
                    || db.message().contains("ks_devices.identity_key")) =>
        {
            StoreError::IdentityInUse
        }
        Some(db) if db.is_unique_violation() => StoreError::Conflict,
        _ => StoreError::Db(e),
    }
}

/// A device as registration stores it.
#[derive(Debug)]
pub(crate) struct NewDevice {
    pub(crate) device_id: u32,
    pub(crate) identity_key: Vec<u8>,
    pub(crate) certificate: Vec<u8>,
    /// The device's own binding, from the certificate (served in bundles).
    pub(crate) binding: Vec<u8>,
    pub(crate) credential_salt: Vec<u8>,
    pub(crate) credential_hash: Vec<u8>,
    /// Unix ms at which the account consented to the device (for the first device: now).
    pub(crate) enrolled_at_ms: i64,
}

/// A registered device as a removal sees it.
#[derive(Debug)]
pub(crate) struct StoredDevice {
    pub(crate) identity_key: Vec<u8>,
    pub(crate) certificate: Vec<u8>,
    pub(crate) enrolled_at_ms: i64,
    /// Registered with the account: the device that holds the account key.
    pub(crate) holds_account_key: bool,
}

/// How long a removal's tombstone is kept. A consent signed before the removal is refused by
/// its age after at most the consent window; relays read the recent ones
/// too (a ticket lives at most a day, MAX_TICKET_LIFETIME_SECS).
pub(crate) const TOMBSTONE_RETENTION_MS: i64 = 25 * 60 * 60 * 1000;

/// A registered device's public data.
#[derive(Debug)]
pub(crate) struct DeviceRow {
    pub(crate) device_id: u32,
    pub(crate) identity_key: Vec<u8>,
    pub(crate) certificate: Vec<u8>,
}

/// What a bundle fetch took out of storage for one device, in canonical encodings.
#[derive(Debug)]
pub(crate) struct BundleParts {
    pub(crate) identity_key: Vec<u8>,
    pub(crate) binding: Vec<u8>,
    pub(crate) certificate: Vec<u8>,
    pub(crate) signed_prekey: Vec<u8>,
    pub(crate) one_time_prekey: Option<Vec<u8>>,
    pub(crate) kem_prekey: Option<Vec<u8>>,
}

/// Remaining prekeys of one device.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub(crate) struct PreKeyCounts {
    pub(crate) one_time: i64,
    pub(crate) kem_one_time: i64,
    pub(crate) has_signed_prekey: bool,
    pub(crate) has_last_resort_kem: bool,
}

/// Keys to store for one device, all already verified.
#[derive(Debug, Default)]
pub(crate) struct KeyUpload {
    pub(crate) signed_prekey: Option<(u32, Vec<u8>)>,
    pub(crate) one_time: Vec<(u32, Vec<u8>)>,
    pub(crate) kem_one_time: Vec<(u32, Vec<u8>)>,
    pub(crate) kem_last_resort: Option<(u32, Vec<u8>)>,
}

/// A transaction that holds a device's write lock until it ends.
trait BeginDeviceWrite {
    type Db: sqlx::Database;

    async fn begin_device_write(
        &self,
        user_id: &str,
        device: i64,
    ) -> Result<sqlx::Transaction<'static, Self::Db>, sqlx::Error>;
}

/// A transaction that holds an account's write lock (its devices' registrations and
/// removals) until it ends.
trait BeginAccountWrite {
    type Db: sqlx::Database;

    async fn begin_account_write(
        &self,
        user_id: &str,
    ) -> Result<sqlx::Transaction<'static, Self::Db>, sqlx::Error>;
}

impl BeginAccountWrite for SqlitePool {
    type Db = sqlx::Sqlite;

    /// SQLite's one writer lock covers every account.
    async fn begin_account_write(
        &self,
        _user_id: &str,
    ) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, sqlx::Error> {
        self.begin_with("BEGIN IMMEDIATE").await
    }
}

impl BeginAccountWrite for PgPool {
    type Db = sqlx::Postgres;

    /// PostgreSQL: the account's row, locked `FOR UPDATE`.
    async fn begin_account_write(
        &self,
        user_id: &str,
    ) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
        let mut tx = self.begin().await?;
        sqlx::query("SELECT 1 FROM ks_accounts WHERE user_id = $1 FOR UPDATE")
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        Ok(tx)
    }
}

impl BeginDeviceWrite for SqlitePool {
    type Db = sqlx::Sqlite;

    /// SQLite has one writer: `BEGIN IMMEDIATE` takes the write lock before the first read,
    /// so the count cannot go stale (and a read-then-write transaction cannot fail with
    /// SQLITE_BUSY_SNAPSHOT).
    async fn begin_device_write(
        &self,
        _user_id: &str,
        _device: i64,
    ) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, sqlx::Error> {
        self.begin_with("BEGIN IMMEDIATE").await
    }
}

impl BeginDeviceWrite for PgPool {
    type Db = sqlx::Postgres;

    /// PostgreSQL: the device's row, locked `FOR UPDATE`, serialises its uploads (and only
    /// its uploads).
    async fn begin_device_write(
        &self,
        user_id: &str,
        device: i64,
    ) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
        let mut tx = self.begin().await?;
        sqlx::query("SELECT 1 FROM ks_devices WHERE user_id = $1 AND device_id = $2 FOR UPDATE")
            .bind(user_id)
            .bind(device)
            .execute(&mut *tx)
            .await?;
        Ok(tx)
    }
}

/// The database: SQLite or PostgreSQL.
#[derive(Debug, Clone)]
pub(crate) enum Store {
    /// The pool, and the dedicated connection of the fetch path (`sqlite_hot_path`).
    Sqlite(SqlitePool, SqliteHotPath),
    Postgres(PgPool),
}

/// Runs `$body` with `$pool` bound to whichever pool the store holds.
macro_rules! on_pool {
    ($store:expr, |$pool:ident| $body:expr) => {
        match $store {
            Store::Sqlite($pool, _) => $body,
            Store::Postgres($pool) => $body,
        }
    };
}

/// PostgreSQL takes a whole bundle in one statement (one round trip, one commit). The
/// deletes only run when the device has a signed prekey, so no key is consumed for a fetch
/// that returns no bundle, and only when `$3` (may consume) is true.
const TAKE_BUNDLE_PG: &str = "WITH has_spk AS ( \
       SELECT 1 FROM ks_signed_prekeys WHERE user_id = $1 AND device_id = $2), \
     otk AS ( \
       DELETE FROM ks_one_time_prekeys WHERE user_id = $1 AND device_id = $2 \
         AND $3 AND EXISTS (SELECT 1 FROM has_spk) AND key_id = ( \
           SELECT key_id FROM ks_one_time_prekeys WHERE user_id = $1 AND device_id = $2 \
           ORDER BY key_id LIMIT 1 FOR UPDATE SKIP LOCKED) \
       RETURNING encoded), \
     kem AS ( \
       DELETE FROM ks_kem_prekeys WHERE user_id = $1 AND device_id = $2 \
         AND $3 AND EXISTS (SELECT 1 FROM has_spk) AND key_id = ( \
           SELECT key_id FROM ks_kem_prekeys WHERE user_id = $1 AND device_id = $2 \
           ORDER BY key_id LIMIT 1 FOR UPDATE SKIP LOCKED) \
       RETURNING encoded) \
     SELECT d.identity_key, d.certificate, s.encoded, (SELECT encoded FROM otk), \
       COALESCE((SELECT encoded FROM kem), (SELECT l.encoded FROM ks_last_resort_kem_prekeys l \
         WHERE l.user_id = $1 AND l.device_id = $2)), d.binding \
     FROM ks_devices d JOIN ks_signed_prekeys s \
       ON s.user_id = d.user_id AND s.device_id = d.device_id \
     WHERE d.user_id = $1 AND d.device_id = $2";
impl Store {
    /// Opens the database named by `url` (`sqlite:` or `postgres:`), or the SQLite file
    /// `keyserver.db` under `data_dir`, and runs the migrations.
    pub(crate) async fn open(
        url: Option<&str>,
        data_dir: &Path,
        max_connections: u32,
    ) -> Result<Self, KeyserverError> {
        let url = url.map(str::trim).filter(|u| !u.is_empty());
        let store = match url {
            Some(u) if u.starts_with("postgres:") || u.starts_with("postgresql:") => {
                let options = PgConnectOptions::from_str(u)?;
                let pool = PgPoolOptions::new()
                    .max_connections(max_connections)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect_with(options)
                    .await?;
                migrator(POSTGRES_MIGRATIONS).await?.run(&pool).await?;
                Store::Postgres(pool)
            }
            Some(u) if u.starts_with("sqlite:") => {
                Self::open_sqlite(SqliteConnectOptions::from_str(u)?, max_connections).await?
            }
            Some(_) => {
                return Err(KeyserverError::Config(
                    "database URL must start with sqlite: or postgres:".into(),
                ));
            }
            None => {
                tokio::fs::create_dir_all(data_dir).await?;
                let options = SqliteConnectOptions::new().filename(data_dir.join("keyserver.db"));
                Self::open_sqlite(options, max_connections).await?
            }
        };
        Ok(store)
    }

    async fn open_sqlite(
        options: SqliteConnectOptions,
        max_connections: u32,
    ) -> Result<Self, KeyserverError> {
        let options = options
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options.clone())
            .await?;
        migrator(SQLITE_MIGRATIONS).await?.run(&pool).await?;
        // The fetch path opens the file a second time: an in-memory database (which sqlx
        // names `file:sqlx-in-memory-N`) has no second connection, and would lose every key
        // at a restart anyway.
        let path = options.get_filename();
        if !path.is_file() {
            return Err(KeyserverError::Config(format!(
                "the key server's SQLite database must be a file ({} is not)",
                path.display()
            )));
        }
        let hot_path = SqliteHotPath::open(path)?;
        Ok(Store::Sqlite(pool, hot_path))
    }

    /// Closes the pool (tests call it before dropping a PostgreSQL schema).
    pub(crate) async fn close(&self) {
        on_pool!(self, |pool| pool.close().await)
    }

    /// Registers an account with its first device, atomically.
    pub(crate) async fn create_account(
        &self,
        user: &UserId,
        account_key: &[u8],
        device: &NewDevice,
        now: i64,
    ) -> Result<(), StoreError> {
        let user_id = user.as_str();
        on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "INSERT INTO ks_accounts (user_id, account_key, created_at, key_holder_device) \
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(user_id)
            .bind(account_key)
            .bind(now)
            .bind(i64::from(device.device_id))
            .execute(&mut *tx)
            .await
            .map_err(conflict_or_db)?;
            insert_device(user_id, device, now)
                .execute(&mut *tx)
                .await
                .map_err(conflict_or_db)?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Adds a device to an existing account, unless the device id or its identity key was
    /// removed from the account at or after `device.enrolled_at_ms` (the consent's time):
    /// [`StoreError::RemovedAfterConsent`]. The check and the insert hold the account's write
    /// lock, so a removal cannot slip between them.
    pub(crate) async fn add_device(
        &self,
        user: &UserId,
        device: &NewDevice,
        now: i64,
    ) -> Result<(), StoreError> {
        let user_id = user.as_str();
        on_pool!(self, |pool| {
            let mut tx = pool.begin_account_write(user_id).await?;
            let removed_since = sqlx::query(
                "SELECT 1 FROM ks_removed_devices WHERE user_id = $1 \
                 AND (device_id = $2 OR identity_key = $3) AND removed_at_ms >= $4 LIMIT 1",
            )
            .bind(user_id)
            .bind(i64::from(device.device_id))
            .bind(device.identity_key.as_slice())
            .bind(device.enrolled_at_ms)
            .fetch_optional(&mut *tx)
            .await?;
            if removed_since.is_some() {
                return Err(StoreError::RemovedAfterConsent);
            }
            insert_device(user_id, device, now)
                .execute(&mut *tx)
                .await
                .map_err(conflict_or_db)?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// The account identity key of `user_id`, if registered.
    pub(crate) async fn account_key(&self, user: &UserId) -> Result<Option<Vec<u8>>, StoreError> {
        let user_id = user.as_str();
        on_pool!(self, |pool| {
            let row = sqlx::query("SELECT account_key FROM ks_accounts WHERE user_id = $1")
                .bind(user_id)
                .fetch_optional(pool)
                .await?;
            Ok(row.map(|r| r.try_get::<Vec<u8>, _>(0)).transpose()?)
        })
    }

    /// Salt and hash of a device's credential.
    pub(crate) async fn credential(
        &self,
        address: &DeviceAddress,
    ) -> Result<Option<(Vec<u8>, Vec<u8>)>, StoreError> {
        let pool = match self {
            Store::Sqlite(_, hot_path) => return hot_path.credential(address).await,
            Store::Postgres(pool) => pool,
        };
        let row = sqlx::query(
            "SELECT credential_salt, credential_hash FROM ks_devices \
             WHERE user_id = $1 AND device_id = $2",
        )
        .bind(address.user_id())
        .bind(i64::from(address.device))
        .fetch_optional(pool)
        .await?;
        match row {
            Some(r) => Ok(Some((r.try_get(0)?, r.try_get(1)?))),
            None => Ok(None),
        }
    }

    /// Every device of a user, by device id.
    pub(crate) async fn devices(&self, user: &UserId) -> Result<Vec<DeviceRow>, StoreError> {
        let user_id = user.as_str();
        on_pool!(self, |pool| {
            let rows = sqlx::query(
                "SELECT device_id, identity_key, certificate FROM ks_devices \
                 WHERE user_id = $1 ORDER BY device_id",
            )
            .bind(user_id)
            .fetch_all(pool)
            .await?;
            rows.into_iter()
                .map(|r| {
                    Ok(DeviceRow {
                        device_id: u32::try_from(r.try_get::<i64, _>(0)?).unwrap_or(u32::MAX),
                        identity_key: r.try_get(1)?,
                        certificate: r.try_get(2)?,
                    })
                })
                .collect()
        })
    }

    /// Stores verified keys for one device in one transaction, unless the device would then
    /// hold more than `limit` one-time prekeys of either kind ([`StoreError::PrekeyLimit`]).
    /// The count and the inserts hold the device's write lock, so concurrent uploads cannot
    /// both pass the check.
    pub(crate) async fn upload_keys(
        &self,
        address: &DeviceAddress,
        keys: &KeyUpload,
        limit: i64,
    ) -> Result<(), StoreError> {
        let (user_id, device_id) = (address.user_id(), address.device);
        let device = i64::from(device_id);
        on_pool!(self, |pool| {
            let mut tx = pool.begin_device_write(user_id, device).await?;
            let stored = sqlx::query(
                "SELECT \
                   (SELECT COUNT(*) FROM ks_one_time_prekeys WHERE user_id = $1 AND device_id = $2), \
                   (SELECT COUNT(*) FROM ks_kem_prekeys WHERE user_id = $1 AND device_id = $2)",
            )
            .bind(user_id)
            .bind(device)
            .fetch_one(&mut *tx)
            .await?;
            let adds = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
            if stored
                .try_get::<i64, _>(0)?
                .saturating_add(adds(keys.one_time.len()))
                > limit
                || stored
                    .try_get::<i64, _>(1)?
                    .saturating_add(adds(keys.kem_one_time.len()))
                    > limit
            {
                return Err(StoreError::PrekeyLimit { limit });
            }
            // The signed prekey and the last-resort KEM key: one per device, replaced.
            for (table, key) in [
                ("ks_signed_prekeys", &keys.signed_prekey),
                ("ks_last_resort_kem_prekeys", &keys.kem_last_resort),
            ] {
                let Some((key_id, encoded)) = key else {
                    continue;
                };
                sqlx::query(&format!(
                    "INSERT INTO {table} (user_id, device_id, key_id, encoded) \
                     VALUES ($1, $2, $3, $4) ON CONFLICT (user_id, device_id) \
                     DO UPDATE SET key_id = excluded.key_id, encoded = excluded.encoded"
                ))
                .bind(user_id)
                .bind(device)
                .bind(i64::from(*key_id))
                .bind(encoded.as_slice())
                .execute(&mut *tx)
                .await?;
            }
            for (table, rows) in [
                ("ks_one_time_prekeys", &keys.one_time),
                ("ks_kem_prekeys", &keys.kem_one_time),
            ] {
                if rows.is_empty() {
                    continue;
                }
                // One multi-row statement per batch (<= 100 rows x 4 parameters).
                let mut insert = sqlx::QueryBuilder::new(format!(
                    "INSERT INTO {table} (user_id, device_id, key_id, encoded) "
                ));
                insert.push_values(rows.iter(), |mut row, (key_id, encoded)| {
                    row.push_bind(user_id)
                        .push_bind(device)
                        .push_bind(i64::from(*key_id))
                        .push_bind(encoded.as_slice());
                });
                insert.push(
                    " ON CONFLICT (user_id, device_id, key_id) DO UPDATE SET encoded = excluded.encoded",
                );
                insert.build().execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// Remaining prekeys of a device.
    pub(crate) async fn counts(&self, address: &DeviceAddress) -> Result<PreKeyCounts, StoreError> {
        let (user_id, device_id) = (address.user_id(), address.device);
        let device = i64::from(device_id);
        on_pool!(self, |pool| {
            let row = sqlx::query(
                "SELECT \
                   (SELECT COUNT(*) FROM ks_one_time_prekeys WHERE user_id = $1 AND device_id = $2), \
                   (SELECT COUNT(*) FROM ks_kem_prekeys WHERE user_id = $1 AND device_id = $2), \
                   (SELECT COUNT(*) FROM ks_signed_prekeys WHERE user_id = $1 AND device_id = $2), \
                   (SELECT COUNT(*) FROM ks_last_resort_kem_prekeys \
                      WHERE user_id = $1 AND device_id = $2)",
            )
            .bind(user_id)
            .bind(device)
            .fetch_one(pool)
            .await?;
            Ok(PreKeyCounts {
                one_time: row.try_get(0)?,
                kem_one_time: row.try_get(1)?,
                has_signed_prekey: row.try_get::<i64, _>(2)? > 0,
                has_last_resort_kem: row.try_get::<i64, _>(3)? > 0,
            })
        })
    }

    /// Takes a bundle for one device: its identity, certificate and signed prekey, and
    /// consumes one one-time X25519 prekey and one one-time KEM prekey (falling back to the
    /// last-resort KEM prekey). `None` if the device is unknown or has no signed prekey.
    /// With `consume` false nothing is consumed: no one-time X25519 prekey, and the
    /// last-resort KEM prekey.
    pub(crate) async fn take_bundle(
        &self,
        address: &DeviceAddress,
        consume: bool,
    ) -> Result<Option<BundleParts>, StoreError> {
        let pool = match self {
            Store::Sqlite(_, hot_path) => return hot_path.take_bundle(address, consume).await,
            Store::Postgres(pool) => pool,
        };
        let row = sqlx::query(TAKE_BUNDLE_PG)
            .bind(address.user_id())
            .bind(i64::from(address.device))
            .bind(consume)
            .fetch_optional(pool)
            .await?;
        match row {
            Some(r) => Ok(Some(BundleParts {
                identity_key: r.try_get(0)?,
                certificate: r.try_get(1)?,
                signed_prekey: r.try_get(2)?,
                one_time_prekey: r.try_get(3)?,
                kem_prekey: r.try_get(4)?,
                binding: r.try_get(5)?,
            })),
            None => Ok(None),
        }
    }

    /// Removes a device: its credential (so it can no longer authenticate or get relay
    /// tickets) and every key it uploaded, and leaves a tombstone at `now_ms` so no consent
    /// signed before now can enrol it again; in one transaction that holds the account's
    /// write lock. `authorize` sees the device first and may refuse (its error is returned and
    /// nothing changes). Returns `Ok(None)` if there is no such device.
    pub(crate) async fn remove_device<E>(
        &self,
        address: &DeviceAddress,
        now_ms: i64,
        authorize: impl FnOnce(&StoredDevice) -> Result<(), E>,
    ) -> Result<Option<StoredDevice>, E>
    where
        E: From<StoreError>,
    {
        let (user_id, device_id) = (address.user_id(), i64::from(address.device));
        const KEY_TABLES: [&str; 4] = [
            "ks_signed_prekeys",
            "ks_one_time_prekeys",
            "ks_kem_prekeys",
            "ks_last_resort_kem_prekeys",
        ];
        let db = |e: sqlx::Error| E::from(StoreError::Db(e));
        on_pool!(self, |pool| {
            let mut tx = pool.begin_account_write(user_id).await.map_err(db)?;
            let row = sqlx::query(
                "SELECT d.identity_key, d.certificate, d.enrolled_at_ms, \
                   COALESCE(a.key_holder_device = d.device_id, FALSE) \
                 FROM ks_devices d JOIN ks_accounts a ON a.user_id = d.user_id \
                 WHERE d.user_id = $1 AND d.device_id = $2",
            )
            .bind(user_id)
            .bind(device_id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db)?;
            let Some(row) = row else {
                return Ok(None);
            };
            let device = StoredDevice {
                identity_key: row.try_get(0).map_err(db)?,
                certificate: row.try_get(1).map_err(db)?,
                enrolled_at_ms: row.try_get(2).map_err(db)?,
                holds_account_key: row.try_get(3).map_err(db)?,
            };
            authorize(&device)?;
            // Keys first: they reference the device row.
            for table in KEY_TABLES {
                let sql = format!("DELETE FROM {table} WHERE user_id = $1 AND device_id = $2");
                sqlx::query(&sql)
                    .bind(user_id)
                    .bind(device_id)
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?;
            }
            sqlx::query("DELETE FROM ks_devices WHERE user_id = $1 AND device_id = $2")
                .bind(user_id)
                .bind(device_id)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
            sqlx::query(
                "INSERT INTO ks_removed_devices (user_id, device_id, identity_key, removed_at_ms) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (user_id, device_id, identity_key) \
                 DO UPDATE SET removed_at_ms = excluded.removed_at_ms",
            )
            .bind(user_id)
            .bind(device_id)
            .bind(device.identity_key.as_slice())
            .bind(now_ms)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
            sqlx::query("DELETE FROM ks_removed_devices WHERE removed_at_ms < $1")
                .bind(now_ms.saturating_sub(TOMBSTONE_RETENTION_MS))
                .execute(&mut *tx)
                .await
                .map_err(db)?;
            tx.commit().await.map_err(db)?;
            Ok(Some(device))
        })
    }

    /// Stores a device list if its version is greater than the stored one. Returns whether it
    /// was stored.
    pub(crate) async fn put_device_list(
        &self,
        user: &UserId,
        version: i64,
        encoded: &[u8],
    ) -> Result<bool, StoreError> {
        let user_id = user.as_str();
        on_pool!(self, |pool| {
            let done = sqlx::query(
                "INSERT INTO ks_device_lists (user_id, version, encoded) VALUES ($1, $2, $3) \
                 ON CONFLICT (user_id) DO UPDATE SET version = excluded.version, \
                 encoded = excluded.encoded WHERE ks_device_lists.version < excluded.version",
            )
            .bind(user_id)
            .bind(version)
            .bind(encoded)
            .execute(pool)
            .await?;
            Ok(done.rows_affected() == 1)
        })
    }

    /// The stored device list of a user.
    /// Stores a provisioning message under (channel, slot) until `expires_at` (Unix
    /// seconds), after deleting expired ones. `Ok(false)`: the slot is taken.
    /// [`StoreError::Full`] when [`MAX_PROVISIONING_MESSAGES`] live messages exist.
    pub(crate) async fn put_provisioning(
        &self,
        channel: &str,
        slot: u8,
        message: &[u8],
        now: i64,
        expires_at: i64,
    ) -> Result<bool, StoreError> {
        on_pool!(self, |pool| {
            sqlx::query("DELETE FROM ks_provisioning WHERE expires_at < $1")
                .bind(now)
                .execute(pool)
                .await?;
            let live: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM ks_provisioning")
                .fetch_one(pool)
                .await?;
            if live >= MAX_PROVISIONING_MESSAGES {
                return Err(StoreError::Full);
            }
            let inserted = sqlx::query(
                "INSERT INTO ks_provisioning (channel, slot, message, expires_at) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
            )
            .bind(channel)
            .bind(i64::from(slot))
            .bind(message)
            .bind(expires_at)
            .execute(pool)
            .await?;
            Ok(inserted.rows_affected() == 1)
        })
    }

    /// The unexpired provisioning message under (channel, slot).
    pub(crate) async fn provisioning(
        &self,
        channel: &str,
        slot: u8,
        now: i64,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        on_pool!(self, |pool| {
            Ok(sqlx::query_scalar(
                "SELECT message FROM ks_provisioning \
                 WHERE channel = $1 AND slot = $2 AND expires_at >= $3",
            )
            .bind(channel)
            .bind(i64::from(slot))
            .bind(now)
            .fetch_optional(pool)
            .await?)
        })
    }

    pub(crate) async fn device_list(&self, user: &UserId) -> Result<Option<Vec<u8>>, StoreError> {
        let user_id = user.as_str();
        on_pool!(self, |pool| {
            let row = sqlx::query("SELECT encoded FROM ks_device_lists WHERE user_id = $1")
                .bind(user_id)
                .fetch_optional(pool)
                .await?;
            Ok(row.map(|r| r.try_get::<Vec<u8>, _>(0)).transpose()?)
        })
    }
}

fn insert_device<'q, DB: sqlx::Database>(
    user_id: &'q str,
    device: &'q NewDevice,
    now: i64,
) -> sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments<'q>>
where
    &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    &'q [u8]: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    sqlx::query(
        "INSERT INTO ks_devices (user_id, device_id, identity_key, certificate, \
         credential_salt, credential_hash, created_at, binding, enrolled_at_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(user_id)
    .bind(i64::from(device.device_id))
    .bind(device.identity_key.as_slice())
    .bind(device.certificate.as_slice())
    .bind(device.credential_salt.as_slice())
    .bind(device.credential_hash.as_slice())
    .bind(now)
    .bind(device.binding.as_slice())
    .bind(device.enrolled_at_ms)
}
