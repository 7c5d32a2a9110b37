//! Wire formats of the group layer: the group message and the sender-key distribution.
//!
//! ```text
//! GroupMessage = 0x01 || key_id u32 || iteration varint || ciphertext || tag (16) || sig (64)
//!   header = 0x01 || key_id || iteration
//!   ad     = "E2EE-v1 group message" || group_id_len u8 || group_id || DeviceAddress(sender)
//!            || header
//!   ciphertext || tag = AES-256-GCM(key, nonce, plaintext, ad)
//!   sig    = Ed25519(sender signing key, ad || ciphertext || tag)
//!
//! SenderKeyDistribution = 0x01 || group_id_len u8 (1..=64) || group_id || key_id u32
//!                         || iteration u32 || chain_key (32) || signing_public_key (32)
//! ```
//!
//! Neither the group id nor the sender is on the group-message wire (the transport names
//! both), but both are authenticated by the AEAD and the signature, so a message cannot be
//! replayed into another group or re-sent under another member's name. A distribution carries no signature of its own: it travels inside a
//! pairwise session, which authenticates its sender.

use std::fmt;

use ed25519_dalek::VerifyingKey;
use zeroize::Zeroizing;

use super::{GroupError, MAX_GROUP_ID_LEN, MAX_GROUP_MESSAGE_LEN};
use crate::{
    Codec, DeviceAddress, Reader, aead::TAG_LEN, debug_hex::hex_prefix, error::DecodeError,
    put_varint,
};

/// Version byte of both group wire formats.
pub const GROUP_FORMAT_VERSION: u8 = 0x01;
/// Ed25519 signature length.
pub(crate) const SIGNATURE_LEN: usize = 64;
/// Context prefix of a group message's associated data and signed bytes.
pub(crate) const GROUP_MESSAGE_CONTEXT: &[u8] = b"E2EE-v1 group message";
/// Shortest group message: header with a one-byte iteration, empty plaintext.
pub const MIN_GROUP_MESSAGE_LEN: usize = 1 + 4 + 1 + TAG_LEN + SIGNATURE_LEN;
/// Encoded length of a distribution for a group id of `n` bytes is `DISTRIBUTION_FIXED_LEN + n`.
pub const DISTRIBUTION_FIXED_LEN: usize = 1 + 1 + 4 + 4 + 32 + 32;

/// An opaque group id, 1..=64 bytes chosen by the application.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupId(Vec<u8>);

impl GroupId {
    /// A group id of 1..=[`MAX_GROUP_ID_LEN`] bytes.
    pub fn new(bytes: &[u8]) -> Result<Self, GroupError> {
        if bytes.is_empty() || bytes.len() > MAX_GROUP_ID_LEN {
            return Err(GroupError::InvalidArgument("group id must be 1..=64 bytes"));
        }
        Ok(Self(bytes.to_vec()))
    }

    /// The id's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

/// `len u8 (1..=64) || bytes`.
impl Codec for GroupId {
    type Error = DecodeError;
    const MAX_LEN: usize = 1 + MAX_GROUP_ID_LEN;

    fn write(&self, out: &mut Vec<u8>) {
        // 1..=64 bytes, checked by every constructor.
        out.push(u8::try_from(self.0.len()).unwrap_or(u8::MAX));
        out.extend_from_slice(&self.0);
    }

    fn read(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let len = usize::from(reader.u8()?);
        if len == 0 {
            return Err(DecodeError::InvalidField("empty group id"));
        }
        if len > MAX_GROUP_ID_LEN {
            return Err(DecodeError::TooLarge);
        }
        Ok(Self(reader.take(len)?.to_vec()))
    }
}

impl fmt::Debug for GroupId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "GroupId({})", hex_prefix(&self.0))
    }
}

/// Identifies one group message of one sender: `key_id << 32 | iteration`. Receipts name
/// group messages by it; both ends compute it from the wire bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct MessageId(pub u64);

impl MessageId {
    /// The id of the message at `iteration` of sender key `key_id`.
    pub fn group(key_id: u32, iteration: u32) -> Self {
        Self(u64::from(key_id) << 32 | u64::from(iteration))
    }
}

/// A decoded (not yet verified) group message.
#[derive(Clone, PartialEq, Eq)]
pub struct GroupMessage {
    bytes: Vec<u8>,
    key_id: u32,
    iteration: u32,
    header_len: usize,
}

/// Decoding checks the layout; the signature and the AEAD are checked by the receiver's
/// state. The ciphertext is unframed, so a group message reads to the end of its input.
impl Codec for GroupMessage {
    type Error = DecodeError;
    const MAX_LEN: usize = MAX_GROUP_MESSAGE_LEN;

    const READS_TO_END: bool = true;

    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.bytes);
    }

    fn read(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Self::parse(reader.rest())
    }
}

impl GroupMessage {
    fn parse(bytes: &[u8]) -> Result<Self, DecodeError> {
        if bytes.len() > MAX_GROUP_MESSAGE_LEN {
            return Err(DecodeError::TooLarge);
        }
        let mut reader = Reader::new(bytes);
        let version = reader.u8()?;
        if version != GROUP_FORMAT_VERSION {
            return Err(DecodeError::UnknownVersion(version));
        }
        let key_id = reader.u32()?;
        let iteration = reader.varint()?;
        let header_len = bytes.len() - reader.remaining();
        if reader.remaining() < TAG_LEN + SIGNATURE_LEN {
            return Err(DecodeError::Truncated);
        }
        Ok(Self {
            bytes: bytes.to_vec(),
            key_id,
            iteration,
            header_len,
        })
    }

    /// Assembles header || ciphertext || tag || signature (used by the sender).
    pub(crate) fn header(key_id: u32, iteration: u32) -> Vec<u8> {
        let mut out = Vec::with_capacity(10);
        out.push(GROUP_FORMAT_VERSION);
        out.extend_from_slice(&key_id.to_be_bytes());
        put_varint(&mut out, iteration);
        out
    }

    /// The sender key id.
    pub fn key_id(&self) -> u32 {
        self.key_id
    }

    /// The chain iteration of the message key.
    pub fn iteration(&self) -> u32 {
        self.iteration
    }

    /// The id receipts use for this message.
    pub fn message_id(&self) -> MessageId {
        MessageId::group(self.key_id, self.iteration)
    }

    /// The wire bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub(crate) fn header_bytes(&self) -> &[u8] {
        &self.bytes[..self.header_len]
    }

    pub(crate) fn ciphertext_and_tag(&self) -> &[u8] {
        &self.bytes[self.header_len..self.bytes.len() - SIGNATURE_LEN]
    }

    pub(crate) fn signature(&self) -> [u8; SIGNATURE_LEN] {
        let mut sig = [0u8; SIGNATURE_LEN];
        sig.copy_from_slice(&self.bytes[self.bytes.len() - SIGNATURE_LEN..]);
        sig
    }
}

impl fmt::Debug for GroupMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GroupMessage")
            .field("key_id", &self.key_id)
            .field("iteration", &self.iteration)
            .field("len", &self.bytes.len())
            .finish()
    }
}

/// `context || group_id_len || group_id || DeviceAddress(sender) || header`: the AEAD's
/// associated data, and (followed by ciphertext || tag) the bytes the sender signs. The
/// receiver computes it with the sender the transport names, so a member cannot re-send
/// another member's messages as its own.
pub(crate) fn associated_data(
    group_id: &GroupId,
    sender: &DeviceAddress,
    header: &[u8],
) -> Vec<u8> {
    let mut ad = Vec::with_capacity(
        GROUP_MESSAGE_CONTEXT.len() + 1 + group_id.0.len() + DeviceAddress::MAX_LEN + header.len(),
    );
    ad.extend_from_slice(GROUP_MESSAGE_CONTEXT);
    group_id.write(&mut ad);
    sender.write(&mut ad);
    ad.extend_from_slice(header);
    ad
}

/// A sender key as its owner hands it to one member: the chain key at `iteration` (never an
/// earlier one) and the public signing key. Secret: zeroized on drop, `Debug` shows no key.
#[derive(Clone, PartialEq, Eq)]
pub struct SenderKeyDistribution {
    pub(crate) group_id: GroupId,
    pub(crate) key_id: u32,
    pub(crate) iteration: u32,
    pub(crate) chain_key: Zeroizing<[u8; 32]>,
    pub(crate) signing_key: VerifyingKey,
}

impl SenderKeyDistribution {
    /// The canonical encoding (secret: send it only inside a pairwise session).
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(Vec::with_capacity(
            DISTRIBUTION_FIXED_LEN + self.group_id.0.len(),
        ));
        out.push(GROUP_FORMAT_VERSION);
        self.group_id.write(&mut out);
        out.extend_from_slice(&self.key_id.to_be_bytes());
        out.extend_from_slice(&self.iteration.to_be_bytes());
        out.extend_from_slice(self.chain_key.as_ref());
        out.extend_from_slice(self.signing_key.as_bytes());
        out
    }

    /// Decodes a distribution; the signing key must be a valid Ed25519 point.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        Reader::decode_exact(bytes, Self::read)
    }

    pub(crate) fn read(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let version = reader.u8()?;
        if version != GROUP_FORMAT_VERSION {
            return Err(DecodeError::UnknownVersion(version));
        }
        let group_id = GroupId::read(reader)?;
        let key_id = reader.u32()?;
        let iteration = reader.u32()?;
        let chain_key = Zeroizing::new(reader.array::<32>()?);
        let signing_key = crate::ed25519::decode_public_key(&reader.array()?)
            .ok_or(DecodeError::InvalidField("sender signing key"))?;
        Ok(Self {
            group_id,
            key_id,
            iteration,
            chain_key,
            signing_key,
        })
    }

    /// The group this key belongs to.
    pub fn group_id(&self) -> &GroupId {
        &self.group_id
    }

    /// The sender key id.
    pub fn key_id(&self) -> u32 {
        self.key_id
    }

    /// The first iteration the receiver can decrypt.
    pub fn iteration(&self) -> u32 {
        self.iteration
    }

    /// The sender's public signing key for this sender key.
    pub fn signing_key(&self) -> [u8; 32] {
        self.signing_key.to_bytes()
    }
}

impl fmt::Debug for SenderKeyDistribution {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self {
            group_id,
            key_id,
            iteration,
            chain_key: _,
            signing_key,
        } = self;
        f.debug_struct("SenderKeyDistribution")
            .field("group_id", group_id)
            .field("key_id", key_id)
            .field("iteration", iteration)
            .field("signing_key", &hex_prefix(signing_key.as_bytes()))
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_message_layout_is_checked() {
        let mut bytes = GroupMessage::header(0x0102_0304, 300);
        assert_eq!(bytes, [0x01, 1, 2, 3, 4, 0xac, 0x02]);
        bytes.extend_from_slice(&[0u8; TAG_LEN + SIGNATURE_LEN]);
        let m = GroupMessage::from_bytes(&bytes).unwrap();
        assert_eq!((m.key_id(), m.iteration()), (0x0102_0304, 300));
        assert_eq!(m.message_id(), MessageId(0x0102_0304_0000_012c));
        assert_eq!(m.ciphertext_and_tag().len(), TAG_LEN);
        assert_eq!(
            GroupMessage::from_bytes(&bytes[..bytes.len() - 1]),
            Err(DecodeError::Truncated)
        );
        let mut v2 = bytes.clone();
        v2[0] = 2;
        assert_eq!(
            GroupMessage::from_bytes(&v2),
            Err(DecodeError::UnknownVersion(2))
        );
        let mut padded = GroupMessage::header(1, 0);
        padded[5] = 0x80;
        padded.push(0x00);
        padded.extend_from_slice(&[0u8; TAG_LEN + SIGNATURE_LEN]);
        assert_eq!(
            GroupMessage::from_bytes(&padded),
            Err(DecodeError::NonCanonical)
        );
        assert_eq!(
            GroupMessage::from_bytes(&vec![1u8; MAX_GROUP_MESSAGE_LEN + 1]),
            Err(DecodeError::TooLarge)
        );
    }

    #[test]
    fn group_id_bounds() {
        assert!(GroupId::new(&[]).is_err());
        assert!(GroupId::new(&[0; MAX_GROUP_ID_LEN]).is_ok());
        assert!(GroupId::new(&[0; MAX_GROUP_ID_LEN + 1]).is_err());
    }
}
