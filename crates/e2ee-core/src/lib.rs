//! # e2ee-core
//!
//! The sans-I/O protocol core of the E2EE SDK: PQXDH session set-up, the Double Ratchet,
//! session records, safety numbers and wire formats. It performs no network, file or clock
//! access and starts no threads; callers pass in bytes, randomness, time and a store, and get
//! bytes and typed errors back.
//!
//! ```text
//!    app ──plaintext──▶ SessionCipher::encrypt ──wire bytes──▶ (transport: not here)
//!                           │   ▲
//!                 load/store│   │ session record, identities, prekeys
//!                           ▼   │
//!                       ProtocolStore (trait; in-memory here, SQLite in crates/client)
//! ```
//!
//! `docs/protocol.md` at the repository root is the normative specification.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod account;
mod address;
mod codec;
mod dh;
mod error;
mod identity;
mod kdf;
mod kem;
pub mod limits;
mod prekeys;

pub use address::{Address, MAX_USER_ID_LEN};
pub use dh::{DhKeyPair, DhPublicKey};
pub use error::{DecodeError, DecryptError, Error, HandshakeError, KeyError, StoreError};
pub use identity::{IDENTITY_KEY_LEN, IdentityDecodeError, IdentityKey, IdentityKeyPair};
pub use kem::{KEM_CIPHERTEXT_LEN, KEM_PUBLIC_KEY_LEN, KemKeyPair, KemPublicKey};
pub use prekeys::{
    KEM_PREKEY_LEN, KemPreKey, KemPreKeyKind, KemPreKeyPublic, ONE_TIME_PREKEY_LEN, OneTimePreKey,
    OneTimePreKeyPublic, PreKeyBundle, SIGNED_PREKEY_LEN, SignedPreKey, SignedPreKeyPublic,
};
