//! # e2ee-client
//!
//! The SDK apps embed. Built so far: [`Device`], the crypto side without networking (bytes in,
//! bytes out: registration, prekeys to upload, bundles to fetch, ciphertexts to send,
//! plaintexts received, every failure an [`Error`] case), over the device's encrypted store
//! ([`store`]). The networked `Client` (transport, outbox, events) comes next.
//!
//! The store: one SQLite
//! database per device whose every value is sealed with AES-256-GCM under a key the app
//! passes in (from its platform keystore), and whose every lookup key is blinded with a keyed
//! hash, so the file alone says neither what is stored nor under which names. The on-disk
//! format is `docs/client-store.md`, with vectors in `vectors/client_store.json`.
//!
//! ```
//! # fn main() -> Result<(), e2ee_client::store::StoreError> {
//! use e2ee_client::store::{Space, StoreKey, Vault};
//! # let dir = std::env::temp_dir().join(format!("e2ee-doc-{}", std::process::id()));
//! # std::fs::create_dir_all(&dir).unwrap();
//! let path = dir.join("device.db");
//! let key = StoreKey::from_bytes([7; 32]); // from the platform keystore
//! let mut vault = Vault::create(&path, &key)?;
//! vault.put(Space::SESSIONS, b"bob.1", b"session record")?;
//! drop(vault);
//!
//! let vault = Vault::open(&path, &key)?; // never recreated: a missing file is an error
//! assert_eq!(vault.get(Space::SESSIONS, b"bob.1")?.map(|v| v.to_vec()), Some(b"session record".to_vec()));
//! assert!(matches!(
//!     Vault::open(&path, &StoreKey::from_bytes([8; 32])),
//!     Err(e2ee_client::store::StoreError::WrongKey)
//! ));
//! # std::fs::remove_dir_all(&dir).unwrap();
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod client;
mod device;
pub mod store;

pub use client::{
    BlockingClient, Client, ClientConfig, ClientError, ConnectionState, EVENT_QUEUE_LEN, Event,
    PREKEY_LOW_WATER,
};
pub use e2ee_core::DeviceAddress;

pub use device::{
    Conversation, Device, Error, LOG_PAGE_LEN, LoggedMessage, MAX_DUE_RECEIPTS,
    MAX_MESSAGE_BODY_LEN, MAX_OUTBOX_CIPHERTEXT, MAX_OUTBOX_RECIPIENTS, MAX_PAGE_MESSAGES,
    MAX_PREKEYS_PER_UPLOAD, MessagePage, MessageStatus, OutboxEntry, Outgoing, PreKeyUpload,
    Received, RecipientState, Registration, SafetyNumber, SentMessage,
};
