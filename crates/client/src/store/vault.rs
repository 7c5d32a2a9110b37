//! The store file: sealed values under blinded lookup keys, in spaces.

use std::path::Path;

use rand_core::{OsRng, RngCore};
use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::{
    STORE_FORMAT_VERSION, StoreError,
    keys::{DerivedKeys, SALT_LEN, StoreKey},
    schema,
    seal::{self, MAX_VALUE_LEN},
};

/// The plaintext of the key-check value, sealed in space 0 under the lookup `KEY_CHECK_LOOKUP`.
pub(crate) const KEY_CHECK_VALUE: &[u8] = b"E2EE-v1 client store key check";
pub(crate) const KEY_CHECK_LOOKUP: &[u8] = b"key check";
/// How long a writer waits for another connection's write lock before `SQLITE_BUSY`.
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// A namespace of the store: what kind of value a lookup key names. Part of the blinded key
/// and of the AEAD's associated data, so a value cannot be moved between spaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Space(u8);

impl Space {
    /// The store's own metadata (the key check); not for values.
    pub(crate) const META: Space = Space(0);
    /// This device's identity, binding and account state.
    pub const IDENTITY: Space = Space(1);
    /// This device's private prekeys.
    pub const PREKEYS: Space = Space(2);
    /// Pairwise session records, by peer device address.
    pub const SESSIONS: Space = Space(3);
    /// Group sessions (sender keys), by group id.
    pub const GROUPS: Space = Space(4);
    /// The device directory and trusted identities.
    pub const DIRECTORY: Space = Space(5);
    /// Envelopes waiting for the relay's acknowledgement.
    pub const OUTBOX: Space = Space(6);
    /// Ids of envelopes already processed (deduplication).
    pub const PROCESSED: Space = Space(7);
    /// The local message log: one record per message.
    pub const MESSAGES: Space = Space(8);
    /// The message log's conversations: one header each (listed to show conversations).
    pub const CONVERSATIONS: Space = Space(9);
    /// The message log's index pages: a conversation's messages in order.
    pub const LOG_INDEX: Space = Space(10);
    /// Receipts owed to other users, committed with the message they acknowledge and sent
    /// once a session allows.
    pub const RECEIPTS_DUE: Space = Space(11);
    /// Signed group histories (membership, roles, name, settings), by group id.
    pub const GROUP_HISTORY: Space = Space(12);
    /// Group changes that became final, by group id and version, to answer other members'
    /// sync requests.
    pub const GROUP_CHANGES: Space = Space(13);
    /// Parts of a large group welcome, by sender device, until all have arrived.
    pub const WELCOME_PARTS: Space = Space(14);

    /// The space's number, as stored.
    pub fn id(self) -> u8 {
        self.0
    }
}

/// An open store. One connection; wrap it in a mutex to share it between threads.
pub struct Vault {
    conn: Connection,
    keys: DerivedKeys,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault").finish_non_exhaustive()
    }
}

/// What SQLite says when a file is not a database.
fn not_a_store(e: rusqlite::Error) -> StoreError {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::NotADatabase) => StoreError::NotAStore,
        _ => StoreError::Sqlite(e),
    }
}

fn configure(conn: &Connection) -> Result<(), StoreError> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // WAL: readers (a notification extension) do not block the writer. FULL: a commit is on
    // disk before it returns, so an ack sent after it never loses a message.
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(not_a_store)?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    Ok(())
}

impl Vault {
    /// Creates a new store at `path` under `key`. Refuses a path where a file exists
    /// ([`StoreError::AlreadyExists`]): an existing store is opened, never replaced.
    pub fn create(path: &Path, key: &StoreKey) -> Result<Self, StoreError> {
        // Claim the path atomically: of two creators, one gets AlreadyExists.
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
        {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(StoreError::AlreadyExists(path.to_owned()));
            }
            Err(e) => return Err(StoreError::Io(e)),
        }
        let mut conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        configure(&conn)?;
        let mut salt = [0u8; SALT_LEN];
        OsRng.fill_bytes(&mut salt);
        let keys = DerivedKeys::derive(key, &salt);
        let check = {
            let blinded = seal::blind(&keys, Space::META.0, KEY_CHECK_LOOKUP);
            seal::seal(&keys, &mut OsRng, Space::META.0, &blinded, KEY_CHECK_VALUE)?
        };
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute_batch(schema::CREATE)?;
        tx.pragma_update(None, "application_id", schema::APPLICATION_ID)?;
        for (name, value) in [
            (schema::META_FORMAT, vec![STORE_FORMAT_VERSION]),
            (schema::META_SALT, salt.to_vec()),
            (schema::META_KEY_CHECK, check),
        ] {
            tx.execute(
                "INSERT INTO e2ee_meta (name, value) VALUES (?1, ?2)",
                params![name, value],
            )?;
        }
        tx.commit()?;
        Ok(Self { conn, keys })
    }

    /// Opens the store at `path` under `key`: [`StoreError::Missing`] if there is none,
    /// [`StoreError::NotAStore`] for another file, [`StoreError::WrongKey`] for another key.
    pub fn open(path: &Path, key: &StoreKey) -> Result<Self, StoreError> {
        if !path.exists() {
            return Err(StoreError::Missing(path.to_owned()));
        }
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(not_a_store)?;
        let application_id: i32 = conn
            .pragma_query_value(None, "application_id", |row| row.get(0))
            .map_err(not_a_store)?;
        if application_id != schema::APPLICATION_ID {
            return Err(StoreError::NotAStore);
        }
        configure(&conn)?;
        let meta = |name: &str| -> Result<Vec<u8>, StoreError> {
            conn.query_row(
                "SELECT value FROM e2ee_meta WHERE name = ?1",
                [name],
                |row| row.get(0),
            )
            .optional()?
            .ok_or(StoreError::Corrupt("metadata missing"))
        };
        match meta(schema::META_FORMAT)?.as_slice() {
            [STORE_FORMAT_VERSION] => {}
            [other] => return Err(StoreError::UnsupportedFormat(*other)),
            _ => return Err(StoreError::Corrupt("format version")),
        }
        let salt: [u8; SALT_LEN] = meta(schema::META_SALT)?
            .try_into()
            .map_err(|_| StoreError::Corrupt("salt"))?;
        let keys = DerivedKeys::derive(key, &salt);
        let blinded = seal::blind(&keys, Space::META.0, KEY_CHECK_LOOKUP);
        // A check value that does not open means another key (or a damaged check row, which
        // the store cannot tell apart from it).
        let opened = seal::open(
            &keys,
            Space::META.0,
            &blinded,
            &meta(schema::META_KEY_CHECK)?,
        )
        .map_err(|_| StoreError::WrongKey)?;
        if !bool::from(opened.as_slice().ct_eq(KEY_CHECK_VALUE)) {
            return Err(StoreError::WrongKey);
        }
        Ok(Self { conn, keys })
    }

    /// The value under `lookup` in `space`.
    pub fn get(
        &self,
        space: Space,
        lookup: &[u8],
    ) -> Result<Option<Zeroizing<Vec<u8>>>, StoreError> {
        get(&self.conn, &self.keys, space, lookup)
    }

    /// Stores `value` under `lookup` in `space`, replacing what was there (its own commit).
    pub fn put(&mut self, space: Space, lookup: &[u8], value: &[u8]) -> Result<(), StoreError> {
        put(&self.conn, &self.keys, space, lookup, value)
    }

    /// Deletes the value under `lookup`; returns whether there was one.
    pub fn delete(&mut self, space: Space, lookup: &[u8]) -> Result<bool, StoreError> {
        delete(&self.conn, &self.keys, space, lookup)
    }

    /// Every value in `space`, in no particular order (lookup keys are blinded, so values
    /// that must be listed carry their own key).
    pub fn values(&self, space: Space) -> Result<Vec<Zeroizing<Vec<u8>>>, StoreError> {
        let mut statement = self
            .conn
            .prepare_cached("SELECT blinded, sealed FROM e2ee_items WHERE space = ?1")?;
        let rows = statement.query_map(params![space.0], |row| {
            Ok((row.get::<_, Vec<u8>>(0)?, row.get::<_, Vec<u8>>(1)?))
        })?;
        let mut values = Vec::new();
        for row in rows {
            let (blinded, sealed) = row?;
            let blinded: [u8; seal::BLINDED_LEN] = blinded
                .try_into()
                .map_err(|_| StoreError::Corrupt("blinded lookup key"))?;
            values.push(seal::open(&self.keys, space.0, &blinded, &sealed)?);
        }
        Ok(values)
    }

    /// Runs `body` in one write transaction: everything it puts and deletes commits together
    /// when it returns `Ok`, and nothing does when it returns `Err` (or panics).
    pub fn transaction<T, E: From<StoreError>>(
        &mut self,
        body: impl FnOnce(&mut Transaction<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(StoreError::from)?;
        let mut scope = Transaction {
            tx,
            keys: &self.keys,
        };
        let value = body(&mut scope)?;
        scope.tx.commit().map_err(StoreError::from)?;
        Ok(value)
    }
}

/// What can hold items: a [`Vault`] (each write its own commit) or a [`Transaction`] (writes
/// commit with it). Store code written against it runs either way, so a caller can put
/// several store operations, and its own writes, in one transaction.
pub trait Items {
    /// The value under `lookup` in `space`.
    fn get(&self, space: Space, lookup: &[u8]) -> Result<Option<Zeroizing<Vec<u8>>>, StoreError>;
    /// Stores `value` under `lookup` in `space`.
    fn put(&mut self, space: Space, lookup: &[u8], value: &[u8]) -> Result<(), StoreError>;
    /// Deletes the value under `lookup`; returns whether there was one.
    fn delete(&mut self, space: Space, lookup: &[u8]) -> Result<bool, StoreError>;
    /// Runs `body` so that its writes happen together or not at all: its own transaction on
    /// a vault; inside a transaction, as part of it (it rolls back with it).
    fn atomically<T, E: From<StoreError>>(
        &mut self,
        body: impl FnOnce(&mut Transaction<'_>) -> Result<T, E>,
    ) -> Result<T, E>;
}

impl Items for Vault {
    fn get(&self, space: Space, lookup: &[u8]) -> Result<Option<Zeroizing<Vec<u8>>>, StoreError> {
        Vault::get(self, space, lookup)
    }

    fn put(&mut self, space: Space, lookup: &[u8], value: &[u8]) -> Result<(), StoreError> {
        Vault::put(self, space, lookup, value)
    }

    fn delete(&mut self, space: Space, lookup: &[u8]) -> Result<bool, StoreError> {
        Vault::delete(self, space, lookup)
    }

    fn atomically<T, E: From<StoreError>>(
        &mut self,
        body: impl FnOnce(&mut Transaction<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        self.transaction(body)
    }
}

impl Items for Transaction<'_> {
    fn get(&self, space: Space, lookup: &[u8]) -> Result<Option<Zeroizing<Vec<u8>>>, StoreError> {
        Transaction::get(self, space, lookup)
    }

    fn put(&mut self, space: Space, lookup: &[u8], value: &[u8]) -> Result<(), StoreError> {
        Transaction::put(self, space, lookup, value)
    }

    fn delete(&mut self, space: Space, lookup: &[u8]) -> Result<bool, StoreError> {
        Transaction::delete(self, space, lookup)
    }

    fn atomically<T, E: From<StoreError>>(
        &mut self,
        body: impl FnOnce(&mut Transaction<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        body(self)
    }
}

impl<I: Items> Items for &mut I {
    fn get(&self, space: Space, lookup: &[u8]) -> Result<Option<Zeroizing<Vec<u8>>>, StoreError> {
        (**self).get(space, lookup)
    }

    fn put(&mut self, space: Space, lookup: &[u8], value: &[u8]) -> Result<(), StoreError> {
        (**self).put(space, lookup, value)
    }

    fn delete(&mut self, space: Space, lookup: &[u8]) -> Result<bool, StoreError> {
        (**self).delete(space, lookup)
    }

    fn atomically<T, E: From<StoreError>>(
        &mut self,
        body: impl FnOnce(&mut Transaction<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        (**self).atomically(body)
    }
}

/// A write transaction of a [`Vault`] (see [`Vault::transaction`]).
pub struct Transaction<'a> {
    tx: rusqlite::Transaction<'a>,
    keys: &'a DerivedKeys,
}

impl std::fmt::Debug for Transaction<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transaction").finish_non_exhaustive()
    }
}

impl Transaction<'_> {
    /// The value under `lookup` in `space`, as this transaction sees it.
    pub fn get(
        &self,
        space: Space,
        lookup: &[u8],
    ) -> Result<Option<Zeroizing<Vec<u8>>>, StoreError> {
        get(&self.tx, self.keys, space, lookup)
    }

    /// Stores `value` under `lookup` in `space` when the transaction commits.
    pub fn put(&mut self, space: Space, lookup: &[u8], value: &[u8]) -> Result<(), StoreError> {
        put(&self.tx, self.keys, space, lookup, value)
    }

    /// Deletes the value under `lookup` when the transaction commits; returns whether there
    /// was one.
    pub fn delete(&mut self, space: Space, lookup: &[u8]) -> Result<bool, StoreError> {
        delete(&self.tx, self.keys, space, lookup)
    }

    /// Runs `body` inside this transaction so that, if it fails, only its own writes are
    /// undone (an SQL savepoint): many independent steps share one commit, and one that
    /// fails leaves the others in.
    pub fn step<T, E: From<StoreError>>(
        &mut self,
        body: impl FnOnce(&mut Transaction<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        self.tx
            .execute_batch("SAVEPOINT e2ee_step")
            .map_err(StoreError::from)?;
        match body(self) {
            Ok(value) => {
                self.tx
                    .execute_batch("RELEASE e2ee_step")
                    .map_err(StoreError::from)?;
                Ok(value)
            }
            Err(e) => {
                self.tx
                    .execute_batch("ROLLBACK TO e2ee_step; RELEASE e2ee_step")
                    .map_err(StoreError::from)?;
                Err(e)
            }
        }
    }
}

fn get(
    conn: &Connection,
    keys: &DerivedKeys,
    space: Space,
    lookup: &[u8],
) -> Result<Option<Zeroizing<Vec<u8>>>, StoreError> {
    let blinded = seal::blind(keys, space.0, lookup);
    let sealed: Option<Vec<u8>> = conn
        .prepare_cached("SELECT sealed FROM e2ee_items WHERE space = ?1 AND blinded = ?2")?
        .query_row(params![space.0, blinded], |row| row.get(0))
        .optional()?;
    sealed
        .map(|sealed| seal::open(keys, space.0, &blinded, &sealed))
        .transpose()
}

fn put(
    conn: &Connection,
    keys: &DerivedKeys,
    space: Space,
    lookup: &[u8],
    value: &[u8],
) -> Result<(), StoreError> {
    if value.len() > MAX_VALUE_LEN {
        return Err(StoreError::ValueTooLarge {
            len: value.len(),
            max: MAX_VALUE_LEN,
        });
    }
    let blinded = seal::blind(keys, space.0, lookup);
    let sealed = seal::seal(keys, &mut OsRng, space.0, &blinded, value)?;
    conn.prepare_cached(
        "INSERT INTO e2ee_items (space, blinded, sealed) VALUES (?1, ?2, ?3) \
         ON CONFLICT (space, blinded) DO UPDATE SET sealed = excluded.sealed",
    )?
    .execute(params![space.0, blinded, sealed])?;
    Ok(())
}

fn delete(
    conn: &Connection,
    keys: &DerivedKeys,
    space: Space,
    lookup: &[u8],
) -> Result<bool, StoreError> {
    let blinded = seal::blind(keys, space.0, lookup);
    let deleted = conn
        .prepare_cached("DELETE FROM e2ee_items WHERE space = ?1 AND blinded = ?2")?
        .execute(params![space.0, blinded])?;
    Ok(deleted == 1)
}
