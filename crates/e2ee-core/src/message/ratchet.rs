//! The Double Ratchet message.
//!
//! ```text
//! 0x11 || ratchet public key (32) || varint PN || varint N || AES-256-GCM ciphertext || tag (16)
//! ```
//! Varints are canonical LEB128 (at most 5 bytes). The AEAD associated data is
//! `AD (128 bytes, from the handshake) || every header byte from 0x11 through N`.
//! With 5 plaintext bytes and counters below 128 the message is 1 + 32 + 1 + 1 + 5 + 16 = 56 bytes.

use crate::{
    Codec, Reader,
    aead::{MessageCipher, SealFailed, TAG_LEN},
    dh::DhPublicKey,
    error::DecodeError,
    limits::MAX_MESSAGE_LEN,
    put_varint,
};

use super::RATCHET_MESSAGE_TYPE;

/// Longest header: type, key, two 5-byte varints.
pub(crate) const MAX_HEADER_LEN: usize = 1 + 32 + 5 + 5;

/// A decoded Double Ratchet message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RatchetMessage {
    ratchet_key: DhPublicKey,
    previous_counter: u32,
    counter: u32,
    bytes: Vec<u8>,
    header_len: usize,
}

/// Decoding checks the layout, not the ciphertext. The ciphertext is unframed, so a ratchet
/// message reads to the end of its input: it is always the last field of what carries it.
impl Codec for RatchetMessage {
    type Error = DecodeError;
    const MAX_LEN: usize = MAX_MESSAGE_LEN;

    const READS_TO_END: bool = true;

    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.bytes);
    }

    fn read(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Self::parse(reader.rest())
    }
}

impl RatchetMessage {
    fn parse(bytes: &[u8]) -> Result<Self, DecodeError> {
        if bytes.len() > MAX_MESSAGE_LEN {
            return Err(DecodeError::TooLarge);
        }
        let mut reader = Reader::new(bytes);
        let kind = reader.u8()?;
        if kind != RATCHET_MESSAGE_TYPE {
            return Err(DecodeError::UnknownVersion(kind));
        }
        let ratchet_key = DhPublicKey::read(&mut reader)?;
        let previous_counter = reader.varint()?;
        let counter = reader.varint()?;
        let header_len = bytes.len() - reader.remaining();
        if reader.rest().len() < TAG_LEN {
            return Err(DecodeError::Truncated);
        }
        Ok(Self {
            ratchet_key,
            previous_counter,
            counter,
            bytes: bytes.to_vec(),
            header_len,
        })
    }

    /// Builds and encrypts message number `counter` of the sender's chain.
    pub(crate) fn seal(
        ratchet_key: DhPublicKey,
        previous_counter: u32,
        counter: u32,
        cipher: &MessageCipher,
        associated_data: &[u8; 128],
        plaintext: &[u8],
    ) -> Result<Vec<u8>, SealFailed> {
        let mut bytes = Vec::with_capacity(MAX_HEADER_LEN + plaintext.len() + TAG_LEN);
        bytes.push(RATCHET_MESSAGE_TYPE);
        bytes.extend_from_slice(&ratchet_key.0);
        put_varint(&mut bytes, previous_counter);
        put_varint(&mut bytes, counter);
        let header_len = bytes.len();
        let ad = aead_ad(associated_data, &bytes);
        bytes.extend_from_slice(plaintext);
        cipher.seal(&ad.0[..ad.1], &mut bytes, header_len)?;
        Ok(bytes)
    }

    /// The sender's current ratchet public key.
    pub fn ratchet_key(&self) -> DhPublicKey {
        self.ratchet_key
    }

    /// Length of the sender's previous sending chain (PN).
    pub fn previous_counter(&self) -> u32 {
        self.previous_counter
    }

    /// Index of this message in its chain (N).
    pub fn counter(&self) -> u32 {
        self.counter
    }

    /// The encoded message.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub(crate) fn ciphertext(&self) -> &[u8] {
        &self.bytes[self.header_len..]
    }

    /// The AEAD associated data for this message under the session's `AD`.
    pub(crate) fn aead_ad(
        &self,
        associated_data: &[u8; 128],
    ) -> ([u8; 128 + MAX_HEADER_LEN], usize) {
        aead_ad(associated_data, &self.bytes[..self.header_len])
    }
}

fn aead_ad(associated_data: &[u8; 128], header: &[u8]) -> ([u8; 128 + MAX_HEADER_LEN], usize) {
    let mut ad = [0u8; 128 + MAX_HEADER_LEN];
    ad[..128].copy_from_slice(associated_data);
    let len = header.len().min(MAX_HEADER_LEN);
    ad[128..128 + len].copy_from_slice(&header[..len]);
    (ad, 128 + len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ratchet::MessageKey;

    fn cipher() -> MessageCipher {
        MessageCipher::pairwise(&MessageKey::new([1; 32], 3))
    }

    #[test]
    fn five_byte_message_is_56_bytes_and_round_trips() {
        let bytes =
            RatchetMessage::seal(DhPublicKey([2; 32]), 7, 3, &cipher(), &[0; 128], b"hello")
                .unwrap();
        assert_eq!(bytes.len(), 56);
        let msg = RatchetMessage::from_bytes(&bytes).unwrap();
        assert_eq!(
            (msg.counter(), msg.previous_counter(), msg.ratchet_key()),
            (3, 7, DhPublicKey([2; 32]))
        );
        let (ad, len) = msg.aead_ad(&[0; 128]);
        assert_eq!(
            cipher().open(&ad[..len], msg.ciphertext()).unwrap(),
            b"hello"
        );
    }

    #[test]
    fn malformed_messages_are_refused() {
        assert_eq!(RatchetMessage::from_bytes(&[]), Err(DecodeError::Truncated));
        assert_eq!(
            RatchetMessage::from_bytes(&[0x21; 60]),
            Err(DecodeError::UnknownVersion(0x21))
        );
        let bytes =
            RatchetMessage::seal(DhPublicKey([2; 32]), 0, 3, &cipher(), &[0; 128], b"").unwrap();
        assert_eq!(
            RatchetMessage::from_bytes(&bytes[..bytes.len() - 1]),
            Err(DecodeError::Truncated)
        );
        assert_eq!(
            RatchetMessage::from_bytes(&vec![0x11; MAX_MESSAGE_LEN + 1]),
            Err(DecodeError::TooLarge)
        );
        // A padded varint for PN.
        let mut padded = bytes[..33].to_vec();
        padded.extend_from_slice(&[0x80, 0x00, 0x03]);
        padded.extend_from_slice(&[0; 16]);
        assert_eq!(
            RatchetMessage::from_bytes(&padded),
            Err(DecodeError::NonCanonical)
        );
    }
}
