//! The PQXDH first message: what the responder needs to derive the session, wrapping the
//! initiator's first ratchet message.
//!
//! ```text
//! 0x12 || PreKeyMessageParts || RatchetMessage (the rest)
//! PreKeyMessageParts =
//!         flags u8 (bit 0: one-time prekey used, bit 1: KEM used; other bits zero)
//!      || initiator IdentityKey (128) || initiator DeviceBinding (its address and account)
//!      || responder DeviceAddress (the device the initiator meant to reach)
//!      || base key EK (32) || signed prekey id u32
//!      [|| one-time prekey id u32]  [|| KEM prekey id u32 || KEM ciphertext (1088)]
//! ```

use sha2::{Digest, Sha256};

use crate::{
    Codec, DeviceAddress, Reader,
    device::DeviceBinding,
    dh::DhPublicKey,
    error::DecodeError,
    identity::{IDENTITY_KEY_LEN, IdentityDecodeError, IdentityKey},
    kem::KEM_CIPHERTEXT_LEN,
    limits::MAX_MESSAGE_LEN,
};

use super::{PREKEY_MESSAGE_TYPE, RatchetMessage};

const HAS_ONE_TIME: u8 = 0x01;
const HAS_KEM: u8 = 0x02;

/// Longest handshake header of a first message (type byte and [`PreKeyMessageParts`]).
pub const MAX_PREKEY_HEADER_LEN: usize = 1
    + 1
    + IDENTITY_KEY_LEN
    + DeviceBinding::MAX_LEN
    + DeviceAddress::MAX_LEN
    + 32
    + 4
    + 4
    + 4
    + KEM_CIPHERTEXT_LEN;
/// Longest first message accepted by the decoder.
pub const MAX_PREKEY_MESSAGE_LEN: usize = MAX_PREKEY_HEADER_LEN + MAX_MESSAGE_LEN;

/// The handshake fields of a first message (everything but the inner ratchet message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreKeyMessageParts {
    /// The initiator's identity.
    pub identity: IdentityKey,
    /// The initiator's own statement of its address and account (verified by decoding).
    pub binding: DeviceBinding,
    /// The device the initiator meant this message for.
    pub responder: DeviceAddress,
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

    /// Reads the fields as stored in our own session record: the points are decoded, the
    /// signatures (checked when the fields were made) are not checked again.
    pub(crate) fn read_trusted(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Self::read_checked(reader, false).map_err(|e| match e {
            IdentityDecodeError::Decode(d) => d,
            IdentityDecodeError::Key(_) => DecodeError::InvalidField("pending handshake header"),
        })
    }

    fn read_checked(
        reader: &mut Reader<'_>,
        verify_signatures: bool,
    ) -> Result<Self, IdentityDecodeError> {
        let flags = reader.u8()?;
        if flags & !(HAS_ONE_TIME | HAS_KEM) != 0 {
            return Err(DecodeError::NonCanonical.into());
        }
        let identity = if verify_signatures {
            IdentityKey::read(reader)?
        } else {
            IdentityKey::read_trusted(reader)?
        };
        let binding = DeviceBinding::read(reader)?;
        if verify_signatures {
            binding.verify(&identity)?;
        }
        let responder = DeviceAddress::read(reader)?;
        let base_key = DhPublicKey::read(reader)?;
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
        Ok(Self {
            identity,
            binding,
            responder,
            base_key,
            signed_prekey_id,
            one_time_prekey_id,
            kem,
        })
    }
}

impl Codec for PreKeyMessageParts {
    type Error = IdentityDecodeError;
    const MAX_LEN: usize = MAX_PREKEY_HEADER_LEN - 1;

    fn write(&self, out: &mut Vec<u8>) {
        let mut flags = 0;
        if self.one_time_prekey_id.is_some() {
            flags |= HAS_ONE_TIME;
        }
        if self.kem.is_some() {
            flags |= HAS_KEM;
        }
        out.push(flags);
        out.extend_from_slice(&self.identity.to_bytes());
        self.binding.write(out);
        self.responder.write(out);
        out.extend_from_slice(&self.base_key.0);
        self.signed_prekey_id.write(out);
        if let Some(id) = self.one_time_prekey_id {
            id.write(out);
        }
        if let Some((id, ciphertext)) = &self.kem {
            id.write(out);
            out.extend_from_slice(ciphertext.as_slice());
        }
    }

    /// Verifies the initiator identity's binding signature and the device binding.
    fn read(reader: &mut Reader<'_>) -> Result<Self, IdentityDecodeError> {
        Self::read_checked(reader, true)
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
    /// requires it of every repeated first message, which are matched by handshake id alone.
    handshake_digest: [u8; 32],
}

/// Decoding verifies the initiator identity's binding signature and its device binding. The
/// wrapped ratchet message runs to the end of the input (see [`RatchetMessage`]).
impl Codec for PreKeyMessage {
    type Error = IdentityDecodeError;
    const MAX_LEN: usize = MAX_PREKEY_MESSAGE_LEN;
    const READS_TO_END: bool = true;

    fn write(&self, out: &mut Vec<u8>) {
        out.push(PREKEY_MESSAGE_TYPE);
        self.parts.write(out);
        self.message.write(out);
    }

    fn read(reader: &mut Reader<'_>) -> Result<Self, IdentityDecodeError> {
        let bytes = reader.rest();
        if bytes.len() > MAX_PREKEY_MESSAGE_LEN {
            return Err(DecodeError::TooLarge.into());
        }
        let mut reader = Reader::new(bytes);
        let kind = reader.u8()?;
        if kind != PREKEY_MESSAGE_TYPE {
            return Err(DecodeError::UnknownVersion(kind).into());
        }
        let parts = PreKeyMessageParts::read(&mut reader)?;
        let handshake_digest = Sha256::digest(&bytes[..bytes.len() - reader.remaining()]).into();
        let message = RatchetMessage::read(&mut reader)?;
        Ok(Self {
            parts,
            message,
            handshake_digest,
        })
    }
}

impl PreKeyMessage {
    /// SHA-256 of the handshake fields as received (everything before the wrapped message).
    pub fn handshake_digest(&self) -> &[u8; 32] {
        &self.handshake_digest
    }

    /// Encodes the handshake fields around an already sealed ratchet message.
    pub(crate) fn encode(parts: &PreKeyMessageParts, ratchet_message: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(MAX_PREKEY_HEADER_LEN + ratchet_message.len());
        out.push(PREKEY_MESSAGE_TYPE);
        parts.write(&mut out);
        out.extend_from_slice(ratchet_message);
        out
    }
}
