//! The PQXDH first message: what the responder needs to derive the session, wrapping the
//! initiator's first ratchet message.
//!
//! ```text
//! 0x12 || flags u8 (bit 0: one-time prekey used, bit 1: KEM used; other bits zero)
//!      || initiator IdentityKey (128) || base key EK (32) || signed prekey id u32
//!      [|| one-time prekey id u32]  [|| KEM prekey id u32 || KEM ciphertext (1088)]
//!      || RatchetMessage (the rest)
//! ```

use sha2::{Digest, Sha256};

use crate::{
    Reader,
    dh::DhPublicKey,
    error::DecodeError,
    identity::{IdentityDecodeError, IdentityKey},
    kem::KEM_CIPHERTEXT_LEN,
    limits::MAX_MESSAGE_LEN,
};

use super::{PREKEY_MESSAGE_TYPE, RatchetMessage};

const HAS_ONE_TIME: u8 = 0x01;
const HAS_KEM: u8 = 0x02;

/// The handshake fields of a first message (everything but the inner ratchet message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreKeyMessageParts {
    /// The initiator's identity.
    pub identity: IdentityKey,
    /// The initiator's ephemeral key EK.
    pub base_key: DhPublicKey,
    /// Which signed prekey of ours was used.
    pub signed_prekey_id: u32,
    /// Which one-time prekey of ours was used, if any.
    pub one_time_prekey_id: Option<u32>,
    /// Which KEM prekey was used and the encapsulation, unless plain X3DH.
    pub kem: Option<(u32, Box<[u8; KEM_CIPHERTEXT_LEN]>)>,
}

/// Names the handshake a first message belongs to, with a value the sender cannot vary
/// without changing the session key: `SHA-256(CT)` for PQXDH (every other encoding of `CT`
/// decapsulates to another secret), the base key itself for plain X3DH (whose base keys must
/// be canonical and torsion-free, so each point has one encoding). Repeated first messages are
/// matched to their session by it, and a last-resort KEM prekey accepts each at most once.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct HandshakeId(pub [u8; 32]);

impl HandshakeId {
    /// The 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl PreKeyMessageParts {
    /// The handshake these fields belong to.
    pub fn handshake_id(&self) -> HandshakeId {
        match &self.kem {
            Some((_, ciphertext)) => HandshakeId(Sha256::digest(ciphertext.as_slice()).into()),
            None => HandshakeId(self.base_key.to_bytes()),
        }
    }
}

/// A decoded first message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreKeyMessage {
    /// Handshake fields.
    pub parts: PreKeyMessageParts,
    /// The wrapped ratchet message.
    pub message: RatchetMessage,
    /// SHA-256 of every byte before the wrapped message. The first message authenticates
    /// these fields implicitly (they determine SK); the responder keeps this digest and
    /// requires it of every repeated first message, which are matched by base key alone.
    handshake_digest: [u8; 32],
}

impl PreKeyMessage {
    /// Decodes a first message; verifies the initiator identity's binding signature.
    pub fn decode(bytes: &[u8]) -> Result<Self, IdentityDecodeError> {
        if bytes.len() > MAX_MESSAGE_LEN + KEM_CIPHERTEXT_LEN + 256 {
            return Err(DecodeError::TooLarge.into());
        }
        let mut reader = Reader::new(bytes);
        let kind = reader.u8()?;
        if kind != PREKEY_MESSAGE_TYPE {
            return Err(DecodeError::UnknownVersion(kind).into());
        }
        let flags = reader.u8()?;
        if flags & !(HAS_ONE_TIME | HAS_KEM) != 0 {
            return Err(DecodeError::NonCanonical.into());
        }
        let identity = IdentityKey::read(&mut reader)?;
        let base_key = DhPublicKey::read(&mut reader)?;
        let signed_prekey_id = reader.u32()?;
        let one_time_prekey_id = if flags & HAS_ONE_TIME != 0 {
            Some(reader.u32()?)
        } else {
            None
        };
        let kem = if flags & HAS_KEM != 0 {
            let id = reader.u32()?;
            let ciphertext: [u8; KEM_CIPHERTEXT_LEN] = reader.array()?;
            Some((id, Box::new(ciphertext)))
        } else {
            None
        };
        let inner = reader.rest();
        let handshake_digest = Sha256::digest(&bytes[..bytes.len() - inner.len()]).into();
        let message = RatchetMessage::decode(inner)?;
        Ok(Self {
            parts: PreKeyMessageParts {
                identity,
                base_key,
                signed_prekey_id,
                one_time_prekey_id,
                kem,
            },
            message,
            handshake_digest,
        })
    }

    /// SHA-256 of the handshake fields as received (everything before the wrapped message).
    pub fn handshake_digest(&self) -> &[u8; 32] {
        &self.handshake_digest
    }

    /// Encodes the handshake fields around an already sealed ratchet message.
    pub(crate) fn encode(parts: &PreKeyMessageParts, ratchet_message: &[u8]) -> Vec<u8> {
        let mut out =
            Vec::with_capacity(2 + 128 + 32 + 12 + KEM_CIPHERTEXT_LEN + ratchet_message.len());
        out.push(PREKEY_MESSAGE_TYPE);
        let mut flags = 0;
        if parts.one_time_prekey_id.is_some() {
            flags |= HAS_ONE_TIME;
        }
        if parts.kem.is_some() {
            flags |= HAS_KEM;
        }
        out.push(flags);
        out.extend_from_slice(&parts.identity.to_bytes());
        out.extend_from_slice(&parts.base_key.0);
        out.extend_from_slice(&parts.signed_prekey_id.to_be_bytes());
        if let Some(id) = parts.one_time_prekey_id {
            out.extend_from_slice(&id.to_be_bytes());
        }
        if let Some((id, ciphertext)) = &parts.kem {
            out.extend_from_slice(&id.to_be_bytes());
            out.extend_from_slice(ciphertext.as_slice());
        }
        out.extend_from_slice(ratchet_message);
        out
    }
}
