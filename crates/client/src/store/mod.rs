//! The encrypted device store.
//!
//! * [`StoreKey`]: the app's 32-byte key, from which each store derives its sealing and
//!   blinding keys (HKDF-SHA256, salted with the store's own random salt).
//! * [`Vault`]: the SQLite file of sealed values under blinded lookup keys, in [`Space`]s; one
//!   transaction per [`Vault::transaction`], so a decrypt, its state change and the decrypted
//!   message commit together.
//! * [`DeviceStore`]: the `e2ee-core` store traits (identity, prekeys, sessions, groups) over
//!   a vault, every multi-step change in one transaction.
//! * [`StoreError`]: why a store could not be opened, read or written. A wrong key, a foreign
//!   or corrupt file and a missing file are each their own error: the store is never
//!   recreated behind the caller's back (that would lose every session).

mod device_store;
mod error;
mod keys;
mod schema;
mod seal;
mod vault;
#[cfg(test)]
mod vectors;

pub use device_store::DeviceStore;
pub use error::StoreError;
pub use keys::StoreKey;
pub use seal::MAX_VALUE_LEN;
pub use vault::{Items, Space, Transaction, Vault};

/// The format this code writes and reads (`docs/client-store.md`).
pub const STORE_FORMAT_VERSION: u8 = 1;
