//! What groups add to the SDK's wire: the relay payload of a group message, the group chat
//! message inside it, and the group bodies of pairwise messages.
//!
//! ```text
//! relay payload   GroupEnvelope = 0x21 || GroupId || GroupMessage        (e2ee-core §3)
//! group plaintext GroupChat     = 0x01 || StateRef (the sender's state) || id u64
//!                                 || sent_at_ms u64 || body_len u32 || body
//! pairwise bodies (inside Content::Message, beside ChatMessage 0x01 and ReadSync 0x02):
//!   0x03 || GroupChange        a signed change (e2ee-core §16.2)
//!   0x04 || GroupWelcome       the group, for a member it is new to (§16.5)
//!   0x05 || GroupSyncRequest   "send me the changes after my version" (§16.5)
//!   0x06 || WelcomePart        one part of a welcome too large for one message
//!                              (`super::welcome_parts`)
//!   0x07 || GroupId            "send me your current sender key": a member device that
//!                              got a message under a key it does not hold
//! ```
//!
//! A pairwise ciphertext starts with 0x11 or 0x12 (its message type), so a receiver tells a
//! group envelope from a pairwise one by its first byte. The relay sees the group id (the
//! recipient list already tells it who is in the group); everything else is encrypted.

use e2ee_core::{
    Codec, DecodeError,
    control::Content,
    group::{GroupId, MAX_GROUP_MESSAGE_LEN, membership::StateRef},
};
use e2ee_encoding::Reader;

use super::chat::MAX_MESSAGE_BODY_LEN;

/// First byte of a [`GroupEnvelope`].
pub(crate) const GROUP_ENVELOPE_TYPE: u8 = 0x21;
const GROUP_CHAT_VERSION: u8 = 0x01;
pub(crate) const BODY_GROUP_CHANGE: u8 = 0x03;
pub(crate) const BODY_GROUP_WELCOME: u8 = 0x04;
pub(crate) const BODY_GROUP_SYNC: u8 = 0x05;
pub(crate) const BODY_WELCOME_PART: u8 = 0x06;
pub(crate) const BODY_GROUP_KEY_REQUEST: u8 = 0x07;

/// A group message as the relay carries it.
pub(crate) struct GroupEnvelope {
    pub(crate) group_id: GroupId,
    pub(crate) message: Vec<u8>,
}

impl Codec for GroupEnvelope {
    type Error = DecodeError;
    const MAX_LEN: usize = 1 + GroupId::MAX_LEN + MAX_GROUP_MESSAGE_LEN;
    const READS_TO_END: bool = true;

    fn write(&self, out: &mut Vec<u8>) {
        out.push(GROUP_ENVELOPE_TYPE);
        self.group_id.write(out);
        out.extend_from_slice(&self.message);
    }

    fn read(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let kind = reader.u8()?;
        if kind != GROUP_ENVELOPE_TYPE {
            return Err(DecodeError::UnknownVersion(kind));
        }
        Ok(Self {
            group_id: GroupId::read(reader)?,
            message: reader.rest().to_vec(),
        })
    }
}

/// The chat message a group message carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GroupChat {
    /// The state the sender was at: a receiver that does not hold it asks for the changes.
    pub(crate) state: StateRef,
    pub(crate) id: u64,
    pub(crate) sent_at_ms: u64,
    pub(crate) body: Vec<u8>,
}

impl Codec for GroupChat {
    type Error = DecodeError;

    fn write(&self, out: &mut Vec<u8>) {
        out.push(GROUP_CHAT_VERSION);
        self.state.write(out);
        self.id.write(out);
        self.sent_at_ms.write(out);
        // At most MAX_MESSAGE_BODY_LEN, checked where messages are made.
        (self.body.len() as u32).write(out);
        out.extend_from_slice(&self.body);
    }

    fn read(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let version = reader.u8()?;
        if version != GROUP_CHAT_VERSION {
            return Err(DecodeError::UnknownVersion(version));
        }
        let state = StateRef::read(reader)?;
        let id = reader.u64()?;
        let sent_at_ms = reader.u64()?;
        let len = reader.u32()? as usize;
        if len > MAX_MESSAGE_BODY_LEN {
            return Err(DecodeError::TooLarge);
        }
        Ok(Self {
            state,
            id,
            sent_at_ms,
            body: reader.take(len)?.to_vec(),
        })
    }
}

/// The pairwise plaintext of a group body: `Content::Message(tag || bytes)`.
pub(crate) fn group_content(tag: u8, bytes: &[u8]) -> Result<Vec<u8>, super::Error> {
    let mut body = Vec::with_capacity(1 + bytes.len());
    body.push(tag);
    body.extend_from_slice(bytes);
    Content::Message(body)
        .to_bytes()
        .map(|b| b.to_vec())
        .map_err(|_| super::Error::MessageTooLarge {
            max: MAX_MESSAGE_BODY_LEN,
        })
}

#[cfg(test)]
mod tests {
    use e2ee_encoding::check_codec;

    use super::*;

    #[test]
    fn group_chats_round_trip_and_refuse_oversized_bodies() {
        let chat = GroupChat {
            state: StateRef {
                version: 3,
                hash: [9; 32],
            },
            id: 7,
            sent_at_ms: 11,
            body: b"hello group".to_vec(),
        };
        check_codec(&chat);
        let mut big = chat.to_bytes();
        let at = 1 + 40 + 16;
        big[at..at + 4].copy_from_slice(&((MAX_MESSAGE_BODY_LEN + 1) as u32).to_be_bytes());
        assert_eq!(GroupChat::from_bytes(&big), Err(DecodeError::TooLarge));
        let envelope = GroupEnvelope {
            group_id: GroupId::new(&[1; 32]).unwrap(),
            message: vec![1, 2, 3],
        };
        let bytes = envelope.to_bytes();
        assert_eq!(bytes[0], GROUP_ENVELOPE_TYPE);
        assert_eq!(
            GroupEnvelope::from_bytes(&bytes).unwrap().message,
            vec![1, 2, 3]
        );
    }
}
