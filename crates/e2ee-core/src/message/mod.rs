//! Wire formats of 1:1 messages. The first byte is `version << 4 | type`:
//!
//! | byte | message |
//! |------|---------|
//! | 0x11 | [`RatchetMessage`]: a Double Ratchet message |
//! | 0x12 | [`PreKeyMessage`]: the PQXDH first message wrapping a ratchet message |
//!
//! Both decoders are total: any input yields a value or a [`DecodeError`], and they allocate
//! at most the input's length.

mod prekey;
mod ratchet;

pub use prekey::{
    HandshakeId, MAX_PREKEY_HEADER_LEN, MAX_PREKEY_MESSAGE_LEN, PreKeyMessage, PreKeyMessageParts,
};
pub use ratchet::RatchetMessage;

use crate::error::DecodeError;

/// Type byte of a [`RatchetMessage`] (version 1, type 1).
pub const RATCHET_MESSAGE_TYPE: u8 = 0x11;
/// Type byte of a [`PreKeyMessage`] (version 1, type 2).
pub const PREKEY_MESSAGE_TYPE: u8 = 0x12;

/// Which kind of 1:1 message some bytes claim to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageKind {
    /// A Double Ratchet message on an established session.
    Ratchet,
    /// A session-creating first message.
    PreKey,
}

impl MessageKind {
    /// Reads the type byte.
    pub fn of(bytes: &[u8]) -> Result<Self, DecodeError> {
        match bytes.first() {
            Some(&RATCHET_MESSAGE_TYPE) => Ok(Self::Ratchet),
            Some(&PREKEY_MESSAGE_TYPE) => Ok(Self::PreKey),
            Some(&other) => Err(DecodeError::UnknownVersion(other)),
            None => Err(DecodeError::Truncated),
        }
    }
}
