//! Bounds of the group layer (DESIGN.md, "Cipher suite v1" and "Identities, devices, groups").
//!
//! The chain limits of the 1:1 ratchet ([`crate::limits::MAX_SKIPPED_KEYS`],
//! [`crate::limits::MAX_FORWARD_JUMP`]) apply to every sender-key chain as well.

/// Sender-key states kept per (group, sender device); the oldest is dropped beyond this.
pub const MAX_SENDER_KEY_STATES: usize = 5;
/// Member devices per group, the sender included.
pub const MAX_GROUP_MEMBERS: usize = 1_024;
/// Longest group id in bytes (opaque, chosen by the application; a UUID takes 16).
pub const MAX_GROUP_ID_LEN: usize = 64;
/// Largest plaintext one group message may carry (same as a 1:1 message: 64 KiB).
pub const MAX_GROUP_PLAINTEXT_LEN: usize = crate::limits::MAX_PLAINTEXT_LEN;
/// Largest encoded group message accepted by the decoder.
pub const MAX_GROUP_MESSAGE_LEN: usize = MAX_GROUP_PLAINTEXT_LEN + 1 + 4 + 5 + 16 + 64;
/// Group messages whose receipts a [`crate::control::ReceiptTracker`] follows at once; the
/// oldest is forgotten beyond this.
pub const MAX_TRACKED_MESSAGES: usize = 4_096;
