//! Why the store failed.

use std::path::PathBuf;

/// A store failure. Every case is its own variant so an app can tell "ask for the right key"
/// from "this file is damaged" from "the disk failed".
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// [`crate::store::Vault::open`] found no file: create one with
    /// [`crate::store::Vault::create`] (an existing store is never recreated).
    #[error("no store at {0}")]
    Missing(PathBuf),
    /// [`crate::store::Vault::create`] found a file already there.
    #[error("a file exists at {0}; open it instead")]
    AlreadyExists(PathBuf),
    /// The file is not a store of this SDK (not SQLite, or another application's database).
    #[error("not an e2ee client store")]
    NotAStore,
    /// A store of a format version this code does not read.
    #[error("store format {0} is not supported")]
    UnsupportedFormat(u8),
    /// The key does not open this store.
    #[error("the key does not open this store")]
    WrongKey,
    /// A value or the store's metadata is damaged (or was moved between rows): it does not
    /// authenticate under the store's key.
    #[error("store corrupt: {0}")]
    Corrupt(&'static str),
    /// A value over [`crate::store::MAX_VALUE_LEN`]; nothing was written.
    #[error("value of {len} bytes is over the store's limit of {max}")]
    ValueTooLarge {
        /// The value's length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The file could not be created.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    /// The store failed underneath a protocol operation (reported through `e2ee-core`, which
    /// carries it as text: one of the failures above, or SQLite's).
    #[error("store: {0}")]
    Backend(String),
    /// SQLite failed (I/O, locking, a full disk).
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
}
