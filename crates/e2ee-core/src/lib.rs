//! # e2ee-core
//!
//! The sans-I/O protocol core of the E2EE SDK: PQXDH session set-up, the Double Ratchet,
//! session records, safety numbers and wire formats. It performs no network, file or clock
//! access and starts no threads; callers pass in bytes, randomness, time and a store, and get
//! bytes and typed errors back.
//!
//! ```text
//!  bundle (from key server) ─▶ SessionCipher::process_bundle ─┐
//!  plaintext ────────────────▶ SessionCipher::encrypt ────────┼─▶ wire bytes ─▶ transport
//!  wire bytes (from relay) ──▶ SessionCipher::decrypt ────────┘   (not in this crate)
//!                                    │  ▲
//!                          load/store│  │ session records, identities, prekeys
//!                                    ▼  │
//!                  ProtocolStore (trait: InMemoryStore here, SQLite in the client)
//! ```
//!
//! `docs/protocol.md` at the repository root is the normative specification.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod aead;
pub mod control;
mod debug_hex;
pub mod device;
mod dh;
mod ed25519;
mod error;
mod fingerprint;
pub mod group;
mod identity;
mod kdf;
mod kem;
pub mod limits;
pub mod media;
mod memory_store;
pub mod message;
mod pqxdh;
mod prekeys;
mod ratchet;
mod session;
mod session_cipher;
mod store;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod vectors;

pub use dh::{DhKeyPair, DhPublicKey};
pub use e2ee_encoding::{AddressError, Codec, DecodeError, DeviceAddress, MAX_USER_ID_LEN, UserId};
pub(crate) use e2ee_encoding::{Reader, put_varint};
pub use error::{DecryptError, EncryptError, Error, HandshakeError, KeyError, StoreError};
pub use fingerprint::{FINGERPRINT_ITERATIONS, SCANNABLE_LEN, SafetyNumber};
pub use identity::{
    IDENTITY_KEY_LEN, IDENTITY_SECRET_LEN, IdentityDecodeError, IdentityKey, IdentityKeyPair,
};
pub use kem::{
    KEM_CIPHERTEXT_LEN, KEM_PUBLIC_KEY_LEN, KEM_SECRET_KEY_LEN, KemKeyPair, KemPublicKey,
};
pub use memory_store::InMemoryStore;
pub use prekeys::{
    EncodedBundleParts, KEM_PREKEY_LEN, KemPreKey, KemPreKeyKind, KemPreKeyPublic, MAX_BUNDLE_LEN,
    ONE_TIME_PREKEY_LEN, OneTimePreKey, OneTimePreKeyPublic, PreKeyBundle, SIGNED_PREKEY_LEN,
    SignedPreKey, SignedPreKeyPublic,
};
pub use session::SessionRecord;
pub use session_cipher::{SessionCipher, SessionConfig};
pub use store::{
    AcceptedFirstMessage, GroupStore, IdentityStore, PreKeyStore, ProtocolStore, SessionStore,
};
