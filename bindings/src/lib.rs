//! # e2ee-ffi
//!
//! The client SDK (`e2ee-client`) for Kotlin, Swift and Python, through uniffi: a thin layer
//! of objects wrapping the SDK behind `Arc` ([`Client`], [`LinkRequest`], [`Device`]),
//! records and enums for plain data, an [`EventListener`] callback interface, and one error
//! enum, [`E2eeError`], whose every case reaches each language as its own typed exception.
//!
//! Every object may be called from any thread; calls block their caller (the SDK runs its
//! own tokio runtime), so apps call them off the UI thread. Bytes are `Vec<u8>` (Kotlin
//! `ByteArray`, Swift `Data`, Python `bytes`). Generated code is never committed:
//! `bindings/test.sh` and the packaging scripts generate it from the built library with the
//! workspace's own `uniffi-bindgen` (bindings/README.md).

#![forbid(unsafe_code)]

mod address;
mod bench;
mod client;
mod config;
mod device;
mod device_groups;
mod error;
mod event;
mod group;
mod link;
mod message;
mod runtime;

pub use address::Address;
pub use bench::{RoundTripTimes, benchmark_round_trips_in_rust};
pub use client::{Client, drain};
pub use config::ClientConfig;
pub use device::{
    Device, Envelope, NewDevice, OutboxEntry, PreKeyUpload, Received, Registration, SentMessage,
    create_primary_device, prekey_bundle,
};
pub use device_groups::{CreatedGroup, SentGroupMessage};
pub use error::E2eeError;
pub use event::{ConnectionState, Event, EventListener};
pub use group::{GroupEdit, GroupInfo, GroupMember};
pub use link::LinkRequest;
pub(crate) use message::messages;
pub use message::{
    Conversation, ConversationSummary, Message, MessagePage, MessageRef, MessageStatus,
    RecipientStatus, SafetyNumber,
};

uniffi::setup_scaffolding!();
