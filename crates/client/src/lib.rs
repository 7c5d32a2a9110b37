//! # e2ee-client
//!
//! The SDK apps embed, in two layers:
//!
//! * [`Client`] (async) and [`BlockingClient`] (any thread, no runtime needed): a device
//!   connected to its key server (HTTP) and relay (WebSocket), `https`/`wss` included.
//!   Register, send, receive, receipts, typing, history; a persistent outbox sent until the
//!   relay stores it, envelopes acknowledged only after their commit, reconnects with backoff
//!   and jitter, and [`Event`]s for the app. Every failure is a [`ClientError`].
//! * [`Device`]: the crypto side without networking, for apps that bring their own
//!   transport (bytes in, bytes out: registration, prekeys to upload, bundles to fetch,
//!   outbox entries to send, envelopes received), every failure an [`Error`] case.
//!
//! ```no_run
//! use e2ee_client::{Client, ClientConfig, Event, store::StoreKey};
//!
//! # async fn chat() -> Result<(), e2ee_client::ClientError> {
//! let config = ClientConfig {
//!     server_url: "http://127.0.0.1:8080".into(), // `cargo run --release` serves here
//!     relay_url: None,                            // the same server
//!     store_path: "alice.db".into(),
//!     store_key: StoreKey::from_bytes([7; 32]), // from the platform keystore
//!     extra_root_certificates: Vec::new(),
//!     app_token: None,
//! };
//! let alice = Client::register(config, "alice").await?; // later: Client::open(config)
//! alice.start(); // connect, send the outbox, receive; reconnects by itself
//! let id = alice.send("bob", b"hello bob").await?; // in the outbox: survives a crash
//! while let Some(event) = alice.next_event().await {
//!     match event {
//!         Event::Message(m) => println!("{}: {}", m.author, String::from_utf8_lossy(&m.body)),
//!         Event::StatusChanged(m) if m.id == id => println!("hello is {:?}", m.status),
//!         Event::IdentityChanged { user } => println!("verify {user}'s safety number"),
//!         _ => {}
//!     }
//! }
//! # Ok(()) }
//! ```
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
#[doc(hidden)]
pub mod fuzz_support;
pub mod store;
#[cfg(test)]
mod vector_file;

pub use client::{
    BlockingClient, Client, ClientConfig, ClientError, ConnectionState, EVENT_QUEUE_LEN, Event,
    GROUP_WELCOME_WAIT, LIST_REFRESH, LinkRequest, PREKEY_LOW_WATER,
};
pub use e2ee_core::DeviceAddress;

pub use device::{
    ChatMessage, Conversation, ConversationId, Device, Error, GroupEdit, GroupInfo,
    GroupMemberInfo, GroupReceived, LEASE_TTL, LOG_PAGE_LEN, Lease, LinkAcceptance, LinkContact,
    LinkOffer, LinkWelcome, LoggedMessage, MAX_DUE_RECEIPTS, MAX_LINK_CONTACTS, MAX_LINK_FIELD_LEN,
    MAX_MESSAGE_BODY_LEN, MAX_OUTBOX_CIPHERTEXT, MAX_OUTBOX_RECIPIENTS, MAX_PAGE_MESSAGES,
    MAX_PREKEYS_PER_UPLOAD, MAX_READ_SYNC_IDS, MAX_SYNC_ANSWER, MAX_WELCOME_PARTS, MessagePage,
    MessageStatus, OutboxEntry, Outgoing, PreKeyUpload, ReadSync, Received, RecipientState,
    Registration, SafetyNumber, SentGroupMessage, SentMessage, WELCOME_PART_LEN,
};
