//! End-to-end encrypted control messages: the plaintext inside every pairwise (and, if the
//! application wants, every group) message is a [`Content`], so receipts, typing indicators
//! and sender-key distributions travel exactly like text and are padded like it.
//!
//! ```text
//! Content  = type u8 || body_len varint || body || 0x00 padding
//!            total length a multiple of 128 (the smallest one that fits)
//! type 0x00  application message  body = the application's bytes
//! type 0x01  sender-key distribution  body = SenderKeyDistribution (docs/protocol-groups.md)
//! type 0x02  receipt   body = kind u8 (0x01 delivered, 0x02 read) || count varint (1..=256)
//!                             || count * message id u64
//! type 0x03  typing    body = state u8 (0x00 stopped, 0x01 started)
//!                             || group_id_len u8 (0 = a 1:1 conversation, else 1..=64)
//!                             || group_id
//! ```
//!
//! The relay sees only the ciphertext length; padding to 128-byte blocks makes a receipt for
//! up to 15 messages, a typing indicator, a distribution with a group id of up to 52 bytes and
//! an application message of up to 126 bytes all the same size.

mod receipts;

use std::fmt;

use zeroize::Zeroizing;

pub use self::receipts::{RECEIPT_TRACKER_VERSION, ReceiptEvent, ReceiptStatus, ReceiptTracker};
use crate::{
    Reader,
    error::DecodeError,
    group::{GroupId, MessageId, SenderKeyDistribution},
    limits::MAX_PLAINTEXT_LEN,
    put_varint,
};

/// Every encoded [`Content`] is a multiple of this many bytes.
pub const CONTENT_PADDING_BLOCK: usize = 128;
/// Largest body of a [`Content`]; the padded encoding then fits a 64 KiB plaintext.
pub const MAX_CONTENT_BODY_LEN: usize = MAX_PLAINTEXT_LEN - 4;
/// Most message ids in one receipt.
pub const MAX_RECEIPT_IDS: usize = 256;

const TYPE_MESSAGE: u8 = 0x00;
const TYPE_DISTRIBUTION: u8 = 0x01;
const TYPE_RECEIPT: u8 = 0x02;
const TYPE_TYPING: u8 = 0x03;

/// Delivered or read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReceiptKind {
    /// The device received and decrypted the messages.
    Delivered,
    /// The user read them (implies delivered).
    Read,
}

/// A receipt for up to [`MAX_RECEIPT_IDS`] messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// Delivered or read.
    pub kind: ReceiptKind,
    /// The messages (group messages: [`crate::group::GroupMessage::message_id`]).
    pub message_ids: Vec<MessageId>,
}

/// A typing indicator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Typing {
    /// Started (`true`) or stopped typing.
    pub started: bool,
    /// The group, or `None` in a 1:1 conversation.
    pub group_id: Option<GroupId>,
}

/// The plaintext of a pairwise or group message.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Content {
    /// Application bytes (text, attachments' keys, ...).
    Message(Vec<u8>),
    /// A sender key for a group.
    SenderKeyDistribution(Box<SenderKeyDistribution>),
    /// A delivery or read receipt.
    Receipt(Receipt),
    /// A typing indicator.
    Typing(Typing),
}

impl Content {
    /// The padded encoding; refuses bodies over [`MAX_CONTENT_BODY_LEN`] and receipts with
    /// 0 or more than [`MAX_RECEIPT_IDS`] ids.
    pub fn to_bytes(&self) -> Result<Zeroizing<Vec<u8>>, crate::group::GroupError> {
        use crate::group::GroupError::InvalidArgument;
        let (kind, body): (u8, Zeroizing<Vec<u8>>) = match self {
            Content::Message(bytes) => (TYPE_MESSAGE, Zeroizing::new(bytes.clone())),
            Content::SenderKeyDistribution(d) => (TYPE_DISTRIBUTION, d.to_bytes()),
            Content::Receipt(receipt) => {
                if receipt.message_ids.is_empty() || receipt.message_ids.len() > MAX_RECEIPT_IDS {
                    return Err(InvalidArgument("a receipt names 1..=256 messages"));
                }
                let mut body = Vec::with_capacity(3 + 8 * receipt.message_ids.len());
                body.push(match receipt.kind {
                    ReceiptKind::Delivered => 0x01,
                    ReceiptKind::Read => 0x02,
                });
                // At most 256, checked above.
                put_varint(
                    &mut body,
                    u32::try_from(receipt.message_ids.len()).unwrap_or(0),
                );
                for id in &receipt.message_ids {
                    body.extend_from_slice(&id.0.to_be_bytes());
                }
                (TYPE_RECEIPT, Zeroizing::new(body))
            }
            Content::Typing(typing) => {
                let mut body = vec![u8::from(typing.started)];
                match &typing.group_id {
                    None => body.push(0),
                    Some(id) => {
                        // 1..=64 bytes, checked by GroupId::new.
                        body.push(u8::try_from(id.as_bytes().len()).unwrap_or(0));
                        body.extend_from_slice(id.as_bytes());
                    }
                }
                (TYPE_TYPING, Zeroizing::new(body))
            }
        };
        if body.len() > MAX_CONTENT_BODY_LEN {
            return Err(InvalidArgument("content body over its limit"));
        }
        let mut out = Zeroizing::new(Vec::with_capacity(body.len() + CONTENT_PADDING_BLOCK));
        out.push(kind);
        // Bounded by MAX_CONTENT_BODY_LEN above.
        put_varint(&mut out, u32::try_from(body.len()).unwrap_or(0));
        out.extend_from_slice(&body);
        let padded = out.len().div_ceil(CONTENT_PADDING_BLOCK) * CONTENT_PADDING_BLOCK;
        out.resize(padded, 0);
        Ok(out)
    }

    /// Decodes a padded content: a known type, a body that parses exactly, zero padding and
    /// the shortest padded length.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        if bytes.len() > MAX_PLAINTEXT_LEN {
            return Err(DecodeError::TooLarge);
        }
        let mut reader = Reader::new(bytes);
        let kind = reader.u8()?;
        let len = reader.varint()? as usize;
        if len > MAX_CONTENT_BODY_LEN {
            return Err(DecodeError::TooLarge);
        }
        let body = reader.take(len)?;
        let used = bytes.len() - reader.remaining();
        let padding = reader.rest();
        if padding.iter().any(|&b| b != 0)
            || bytes.len() != used.div_ceil(CONTENT_PADDING_BLOCK) * CONTENT_PADDING_BLOCK
        {
            return Err(DecodeError::NonCanonical);
        }
        let mut body = Reader::new(body);
        let content = match kind {
            TYPE_MESSAGE => Content::Message(body.rest().to_vec()),
            TYPE_DISTRIBUTION => {
                Content::SenderKeyDistribution(Box::new(SenderKeyDistribution::read(&mut body)?))
            }
            TYPE_RECEIPT => {
                let kind = match body.u8()? {
                    0x01 => ReceiptKind::Delivered,
                    0x02 => ReceiptKind::Read,
                    _ => return Err(DecodeError::InvalidField("receipt kind")),
                };
                let count = body.varint()? as usize;
                if count == 0 {
                    return Err(DecodeError::InvalidField("empty receipt"));
                }
                if count > MAX_RECEIPT_IDS {
                    return Err(DecodeError::TooLarge);
                }
                let mut message_ids = Vec::with_capacity(count);
                for _ in 0..count {
                    message_ids.push(MessageId(body.u64()?));
                }
                Content::Receipt(Receipt { kind, message_ids })
            }
            TYPE_TYPING => {
                let started = match body.u8()? {
                    0x00 => false,
                    0x01 => true,
                    _ => return Err(DecodeError::InvalidField("typing state")),
                };
                let len = usize::from(body.u8()?);
                let group_id = if len == 0 {
                    None
                } else {
                    Some(
                        GroupId::new(body.take(len)?)
                            .map_err(|_| DecodeError::InvalidField("group id"))?,
                    )
                };
                Content::Typing(Typing { started, group_id })
            }
            other => return Err(DecodeError::UnknownVersion(other)),
        };
        body.finish()?;
        Ok(content)
    }
}

impl From<SenderKeyDistribution> for Content {
    fn from(d: SenderKeyDistribution) -> Self {
        Content::SenderKeyDistribution(Box::new(d))
    }
}

impl fmt::Debug for Content {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // Application bytes are the user's messages: never in logs.
            Content::Message(bytes) => write!(f, "Message({} bytes)", bytes.len()),
            Content::SenderKeyDistribution(d) => {
                f.debug_tuple("SenderKeyDistribution").field(d).finish()
            }
            Content::Receipt(r) => f.debug_tuple("Receipt").field(r).finish(),
            Content::Typing(t) => f.debug_tuple("Typing").field(t).finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_padded_and_canonical() {
        let group = GroupId::new(b"g").unwrap();
        for content in [
            Content::Message(b"hi".to_vec()),
            Content::Message(vec![7; 300]),
            Content::Receipt(Receipt {
                kind: ReceiptKind::Read,
                message_ids: vec![MessageId(1), MessageId(u64::MAX)],
            }),
            Content::Typing(Typing {
                started: true,
                group_id: Some(group),
            }),
            Content::Typing(Typing {
                started: false,
                group_id: None,
            }),
        ] {
            let bytes = content.to_bytes().unwrap();
            assert_eq!(bytes.len() % CONTENT_PADDING_BLOCK, 0);
            assert_eq!(Content::from_bytes(&bytes).unwrap(), content);
            let mut nonzero = bytes.to_vec();
            let last = nonzero.len() - 1;
            nonzero[last] = 1;
            assert_eq!(
                Content::from_bytes(&nonzero),
                Err(DecodeError::NonCanonical)
            );
            let mut extra = bytes.to_vec();
            extra.extend_from_slice(&[0; CONTENT_PADDING_BLOCK]);
            assert_eq!(Content::from_bytes(&extra), Err(DecodeError::NonCanonical));
        }
    }

    #[test]
    fn short_text_and_receipt_have_the_same_length() {
        let text = Content::Message(b"see you at 8".to_vec())
            .to_bytes()
            .unwrap();
        let receipt = Content::Receipt(Receipt {
            kind: ReceiptKind::Delivered,
            message_ids: vec![MessageId(42)],
        })
        .to_bytes()
        .unwrap();
        assert_eq!(text.len(), receipt.len());
    }

    #[test]
    fn documented_single_block_sizes() {
        let one_block = |c: Content| c.to_bytes().unwrap().len() == CONTENT_PADDING_BLOCK;
        assert!(one_block(Content::Message(vec![1; 126])));
        assert!(!one_block(Content::Message(vec![1; 127])));
        let receipt = |n| {
            Content::Receipt(Receipt {
                kind: ReceiptKind::Read,
                message_ids: vec![MessageId(9); n],
            })
        };
        assert!(one_block(receipt(15)));
        assert!(!one_block(receipt(16)));
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
        use rand_core::SeedableRng;
        for (len, fits) in [(52, true), (53, false)] {
            let mut session = crate::group::GroupSession::new(
                GroupId::new(&vec![b'g'; len]).unwrap(),
                crate::DeviceAddress::new("a", 1).unwrap(),
            );
            let identity = *crate::IdentityKeyPair::generate(&mut rng).public();
            session
                .add_member(crate::device::VerifiedDevice::assume_verified(
                    crate::DeviceAddress::new("b", 1).unwrap(),
                    identity,
                ))
                .unwrap();
            let d = session
                .encrypt(&mut rng, b"x")
                .unwrap()
                .distribution
                .unwrap();
            assert_eq!(one_block(Content::from(d)), fits);
        }
    }

    #[test]
    fn receipt_bounds() {
        let empty = Content::Receipt(Receipt {
            kind: ReceiptKind::Read,
            message_ids: vec![],
        });
        assert!(empty.to_bytes().is_err());
        let full = Content::Receipt(Receipt {
            kind: ReceiptKind::Read,
            message_ids: vec![MessageId(0); MAX_RECEIPT_IDS],
        });
        assert!(Content::from_bytes(&full.to_bytes().unwrap()).is_ok());
        let over = Content::Receipt(Receipt {
            kind: ReceiptKind::Read,
            message_ids: vec![MessageId(0); MAX_RECEIPT_IDS + 1],
        });
        assert!(over.to_bytes().is_err());
    }

    #[test]
    fn debug_hides_message_bytes() {
        let text = format!("{:?}", Content::Message(b"secret plan".to_vec()));
        assert_eq!(text, "Message(11 bytes)");
    }
}
