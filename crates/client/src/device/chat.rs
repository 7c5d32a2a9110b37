//! The SDK's own message: what travels inside a `Content::Message` between two of our
//! clients. It names its conversation, so the same plaintext serves the recipient's devices
//! and our own other devices (for them it is the sent transcript).
//!
//! ```text
//! ChatMessage = 0x01 || id u64 || sent_at_ms u64 || conversation UserId
//!               || body_len u32 (<= MAX_MESSAGE_BODY_LEN) || body
//! ```
//!
//! `conversation` is the other user of a 1:1 conversation as the author sees it: the
//! recipient. `id` is the author's random message id; receipts name it.
//!
//! Between one user's own devices only, the same slot also carries
//!
//! ```text
//! ReadSync = 0x02 || conversation UserId || count u16 (1..=MAX_READ_SYNC_IDS) || count × id u64
//! ```
//!
//! "these messages of `conversation` were read on another of our devices".

use e2ee_core::{Codec, DecodeError, UserId};
use e2ee_encoding::Reader;

const CHAT_MESSAGE_VERSION: u8 = 0x01;
const READ_SYNC_TYPE: u8 = 0x02;
/// Most message ids in one [`ReadSync`].
pub const MAX_READ_SYNC_IDS: usize = 256;

/// Messages of one conversation read on another of our devices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadSync {
    /// The other user of the conversation (the messages' author).
    pub conversation: UserId,
    /// The messages' ids, 1..=[`MAX_READ_SYNC_IDS`].
    pub ids: Vec<u64>,
}

impl Codec for ReadSync {
    type Error = DecodeError;

    fn write(&self, out: &mut Vec<u8>) {
        out.push(READ_SYNC_TYPE);
        self.conversation.write(out);
        // 1..=MAX_READ_SYNC_IDS, checked where syncs are made.
        (self.ids.len() as u16).write(out);
        for id in &self.ids {
            id.write(out);
        }
    }

    fn read(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let kind = reader.u8()?;
        if kind != READ_SYNC_TYPE {
            return Err(DecodeError::UnknownVersion(kind));
        }
        let conversation = UserId::read(reader)?;
        let count = usize::from(reader.u16()?);
        if count == 0 {
            return Err(DecodeError::InvalidField("empty read sync"));
        }
        if count > MAX_READ_SYNC_IDS {
            return Err(DecodeError::TooLarge);
        }
        let ids = (0..count).map(|_| reader.u64()).collect::<Result<_, _>>()?;
        Ok(Self { conversation, ids })
    }
}

/// What a `Content::Message` between our clients carries.
pub(crate) enum Body {
    Chat(ChatMessage),
    ReadSync(ReadSync),
    /// A group body (`super::group_wire`): its tag and the bytes after it.
    Group(u8, Vec<u8>),
}

impl Body {
    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        use super::group_wire::{
            BODY_GROUP_CHANGE, BODY_GROUP_KEY_REQUEST, BODY_GROUP_SYNC, BODY_GROUP_WELCOME,
            BODY_WELCOME_PART,
        };
        match bytes.first() {
            Some(&READ_SYNC_TYPE) => ReadSync::from_bytes(bytes).map(Body::ReadSync),
            Some(
                &tag @ (BODY_GROUP_CHANGE
                | BODY_GROUP_WELCOME
                | BODY_GROUP_SYNC
                | BODY_WELCOME_PART
                | BODY_GROUP_KEY_REQUEST),
            ) => Ok(Body::Group(tag, bytes[1..].to_vec())),
            _ => ChatMessage::from_bytes(bytes).map(Body::Chat),
        }
    }
}

/// Largest message body an app may send. With the header, the content padding and the
/// ratchet's overhead, the ciphertext stays under the relay's 64 KiB per envelope.
pub const MAX_MESSAGE_BODY_LEN: usize = 60 * 1024;

/// One chat message as it travels (decrypted); `Device` makes and reads them, apps need not.
#[derive(Clone, PartialEq, Eq)]
pub struct ChatMessage {
    /// The author's random message id.
    pub id: u64,
    /// The author's clock (Unix ms).
    pub sent_at_ms: u64,
    /// The recipient, as the author sees the conversation.
    pub conversation: UserId,
    /// The app's bytes.
    pub body: Vec<u8>,
}

impl std::fmt::Debug for ChatMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatMessage")
            .field("id", &self.id)
            .field("conversation", &self.conversation)
            .field("len", &self.body.len())
            .finish_non_exhaustive()
    }
}

impl Codec for ChatMessage {
    type Error = DecodeError;

    fn write(&self, out: &mut Vec<u8>) {
        out.push(CHAT_MESSAGE_VERSION);
        self.id.write(out);
        self.sent_at_ms.write(out);
        self.conversation.write(out);
        // At most MAX_MESSAGE_BODY_LEN, checked where messages are made.
        (self.body.len() as u32).write(out);
        out.extend_from_slice(&self.body);
    }

    fn read(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let version = reader.u8()?;
        if version != CHAT_MESSAGE_VERSION {
            return Err(DecodeError::UnknownVersion(version));
        }
        let id = reader.u64()?;
        let sent_at_ms = reader.u64()?;
        let conversation = UserId::read(reader)?;
        let len = reader.u32()? as usize;
        if len > MAX_MESSAGE_BODY_LEN {
            return Err(DecodeError::TooLarge);
        }
        let body = reader.take(len)?.to_vec();
        Ok(Self {
            id,
            sent_at_ms,
            conversation,
            body,
        })
    }
}

#[cfg(test)]
mod tests {
    use e2ee_encoding::check_codec;

    use super::*;

    fn message(len: usize) -> ChatMessage {
        ChatMessage {
            id: 0x0102_0304_0506_0708,
            sent_at_ms: 1_700_000_000_000,
            conversation: UserId::new("bob").unwrap(),
            body: vec![0x5A; len],
        }
    }

    #[test]
    fn messages_round_trip_and_every_cut_is_refused() {
        for len in [0, 1, 300] {
            check_codec(&message(len));
        }
        check_codec(&message(MAX_MESSAGE_BODY_LEN));
    }

    #[test]
    fn read_syncs_round_trip_and_their_limits_hold() {
        let sync = ReadSync {
            conversation: UserId::new("bob").unwrap(),
            ids: vec![1, 2, 3],
        };
        check_codec(&sync);
        check_codec(&ReadSync {
            ids: vec![9; MAX_READ_SYNC_IDS],
            ..sync.clone()
        });
        let over = ReadSync {
            ids: vec![9; MAX_READ_SYNC_IDS + 1],
            ..sync.clone()
        };
        assert_eq!(
            ReadSync::from_bytes(&over.to_bytes()),
            Err(DecodeError::TooLarge)
        );
        let empty = ReadSync {
            ids: vec![],
            ..sync.clone()
        };
        assert_eq!(
            ReadSync::from_bytes(&empty.to_bytes()),
            Err(DecodeError::InvalidField("empty read sync"))
        );
        assert!(matches!(
            Body::decode(&sync.to_bytes()),
            Ok(Body::ReadSync(_))
        ));
        assert!(matches!(
            Body::decode(&message(3).to_bytes()),
            Ok(Body::Chat(_))
        ));
    }

    #[test]
    fn the_body_limit_and_the_version_are_enforced() {
        assert_eq!(
            ChatMessage::from_bytes(&message(MAX_MESSAGE_BODY_LEN + 1).to_bytes()),
            Err(DecodeError::TooLarge)
        );
        let mut unknown = message(1).to_bytes();
        unknown[0] = 2;
        assert_eq!(
            ChatMessage::from_bytes(&unknown),
            Err(DecodeError::UnknownVersion(2))
        );
    }
}
