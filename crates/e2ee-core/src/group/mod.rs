//! Groups with sender keys.
//!
//! ```text
//! per (group, sender device):  key_id u32, CK_0 random, Ed25519 signing key
//! chain step:   MK_i = HMAC-SHA256(CK_i, 0x01),  CK_{i+1} = HMAC-SHA256(CK_i, 0x02)
//! message key:  key || nonce = HKDF-SHA256(0^32, MK_i, "E2EE-v1_SenderKey_MessageKeys")
//! message:      0x01 || key_id || varint i || AES-256-GCM(...) || Ed25519 signature
//! ```
//!
//! The sender encrypts once and signs once; the relay fans the one ciphertext out. Sender
//! keys reach members inside pairwise sessions ([`crate::SessionCipher`]) as
//! [`crate::control::Content::SenderKeyDistribution`]. `docs/protocol-groups.md` is the
//! normative description.
//!
//! Members are devices with the identity their account listed ([`crate::device`]); sender
//! keys are only taken from a member's verified pairwise session. [`GroupCipher`] runs every
//! operation through a [`crate::GroupStore`], which stores the advanced state before any
//! ciphertext leaves.

mod cipher;
mod error;
mod limits;
pub mod membership;
mod message;
mod sender_key;
mod session;

pub use cipher::GroupCipher;
pub use error::GroupError;
pub use limits::{
    MAX_GROUP_ID_LEN, MAX_GROUP_MEMBERS, MAX_GROUP_MESSAGE_LEN, MAX_GROUP_PLAINTEXT_LEN,
    MAX_SENDER_KEY_STATES, MAX_TRACKED_MESSAGES,
};
pub use message::{
    DISTRIBUTION_FIXED_LEN, GROUP_FORMAT_VERSION, GroupId, GroupMessage, MIN_GROUP_MESSAGE_LEN,
    MessageId, SenderKeyDistribution,
};
pub use session::{GROUP_SESSION_FORMAT_VERSION, GroupPlaintext, GroupSend, GroupSession};
