//! Device identity: an Ed25519 signing key plus an X25519 key signed by it.
//!
//! ```text
//! IdentityKey (public, 128 bytes) = Ed25519 pub (32) || X25519 pub (32) || sig (64)
//! sig = Ed25519(signing key, "E2EE-v1 identity dh" || X25519 pub)
//! ```
//!
//! The 64-byte "public bytes" (Ed25519 || X25519) are what the associated data and safety
//! numbers are built from; the signature travels with the key so that anyone who receives
//! it can check the binding.

use std::fmt;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use rand_core::{CryptoRng, RngCore};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::{
    Codec, Reader,
    debug_hex::hex_prefix,
    dh::{DhKeyPair, DhPublicKey},
    error::{DecodeError, KeyError},
};

/// Encoded length of an [`IdentityKey`].
pub const IDENTITY_KEY_LEN: usize = 128;
/// Encoded length of an [`IdentityKeyPair`] secret (Ed25519 seed || X25519 secret).
pub const IDENTITY_SECRET_LEN: usize = 64;

const IDENTITY_DH_CONTEXT: &[u8] = b"E2EE-v1 identity dh";

/// A device's public identity, its binding signature verified.
#[derive(Clone, Copy)]
pub struct IdentityKey {
    signing: VerifyingKey,
    dh: DhPublicKey,
    signature: Signature,
}

/// The 128-byte encoding; decoding verifies the X25519 key's signature.
impl Codec for IdentityKey {
    type Error = IdentityDecodeError;
    const MAX_LEN: usize = IDENTITY_KEY_LEN;

    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.signing.as_bytes());
        out.extend_from_slice(&self.dh.0);
        out.extend_from_slice(&self.signature.to_bytes());
    }

    fn read(reader: &mut Reader<'_>) -> Result<Self, IdentityDecodeError> {
        let signing = crate::ed25519::decode_public_key(&reader.array()?)
            .ok_or(KeyError::InvalidKey("identity signing key"))?;
        let dh = DhPublicKey::read(reader)?;
        let signature = Signature::from_bytes(&reader.array()?);
        signing
            .verify_strict(&dh_signed_message(&dh), &signature)
            .map_err(|_| KeyError::InvalidSignature("identity X25519 key"))?;
        Ok(Self {
            signing,
            dh,
            signature,
        })
    }
}

impl IdentityKey {
    /// Reads a key from our own storage, whose signature was verified when it first arrived:
    /// decodes the points but skips the signature check.
    pub(crate) fn read_trusted(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let signing = crate::ed25519::decode_public_key(&reader.array()?)
            .ok_or(DecodeError::InvalidField("identity signing key"))?;
        let dh = DhPublicKey::read(reader)?;
        let signature = Signature::from_bytes(&reader.array()?);
        Ok(Self {
            signing,
            dh,
            signature,
        })
    }

    /// Decodes a key from an application's own authenticated storage (an AEAD-sealed store
    /// it wrote after the key was verified on arrival): the points are checked, the
    /// signature over the X25519 key is not verified again. Never use it on bytes from the
    /// network or from any storage an attacker can write: [`Codec::from_bytes`] is for those.
    pub fn from_stored_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        Reader::decode_exact(bytes, Self::read_trusted)
    }

    /// Ed25519 public key || X25519 public key: the identity as AD and fingerprints see it.
    pub fn public_bytes(&self) -> [u8; 64] {
        let mut out = [0u8; 64];
        out[..32].copy_from_slice(self.signing.as_bytes());
        out[32..].copy_from_slice(&self.dh.0);
        out
    }

    /// The Ed25519 key that signs this device's prekeys.
    pub fn signing_key(&self) -> [u8; 32] {
        self.signing.to_bytes()
    }

    pub(crate) fn dh(&self) -> &DhPublicKey {
        &self.dh
    }

    /// Checks an Ed25519 signature by this identity (`verify_strict`).
    pub(crate) fn verify(
        &self,
        message: &[u8],
        signature: &[u8; 64],
        what: &'static str,
    ) -> Result<(), KeyError> {
        crate::ed25519::verify(&self.signing, message, signature, what)
    }
}

impl PartialEq for IdentityKey {
    /// Constant time over the public bytes (the signature is determined by them).
    fn eq(&self, other: &Self) -> bool {
        self.public_bytes().ct_eq(&other.public_bytes()).into()
    }
}
impl Eq for IdentityKey {}

impl fmt::Debug for IdentityKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IdentityKey({})", hex_prefix(self.signing.as_bytes()))
    }
}

/// A device's identity with its secrets. Zeroized on drop; `Debug` prints only the public part.
#[derive(Clone)]
pub struct IdentityKeyPair {
    signing: SigningKey,
    dh: DhKeyPair,
    public: IdentityKey,
}

impl IdentityKeyPair {
    /// A fresh identity.
    pub fn generate(rng: &mut (impl RngCore + CryptoRng)) -> Self {
        let mut seed = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(seed.as_mut());
        let signing = SigningKey::from_bytes(&seed);
        let dh = DhKeyPair::generate(rng);
        Self::assemble(signing, dh)
    }

    fn assemble(signing: SigningKey, dh: DhKeyPair) -> Self {
        let signature = signing.sign(&dh_signed_message(&dh.public()));
        let public = IdentityKey {
            signing: signing.verifying_key(),
            dh: dh.public(),
            signature,
        };
        Self {
            signing,
            dh,
            public,
        }
    }

    /// Rebuilds an identity from [`Self::secret_bytes`].
    pub fn from_secret_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut reader = Reader::new(bytes);
        let seed = Zeroizing::new(reader.array::<32>()?);
        let dh = Zeroizing::new(reader.array::<32>()?);
        reader.finish()?;
        Ok(Self::assemble(
            SigningKey::from_bytes(&seed),
            DhKeyPair::from_secret_bytes(*dh),
        ))
    }

    /// Ed25519 seed || X25519 secret, for a store to persist. Handle with care.
    pub fn secret_bytes(&self) -> Zeroizing<[u8; IDENTITY_SECRET_LEN]> {
        let mut out = Zeroizing::new([0u8; IDENTITY_SECRET_LEN]);
        out[..32].copy_from_slice(self.signing.as_bytes());
        out[32..].copy_from_slice(self.dh.secret_bytes().as_ref());
        out
    }

    /// The public identity.
    pub fn public(&self) -> &IdentityKey {
        &self.public
    }

    /// Signs `message` with the identity's Ed25519 key.
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.signing.sign(message).to_bytes()
    }

    pub(crate) fn dh(&self) -> &DhKeyPair {
        &self.dh
    }
}

impl fmt::Debug for IdentityKeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdentityKeyPair")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

fn dh_signed_message(dh: &DhPublicKey) -> [u8; 19 + 32] {
    let mut msg = [0u8; 19 + 32];
    msg[..19].copy_from_slice(IDENTITY_DH_CONTEXT);
    msg[19..].copy_from_slice(&dh.0);
    msg
}

/// Decoding an identity key failed: either the bytes or the binding signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IdentityDecodeError {
    /// Malformed bytes.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// Bad key or signature.
    #[error(transparent)]
    Key(#[from] KeyError),
}

#[cfg(test)]
mod tests {
    use rand_core::OsRng;

    use super::*;

    #[test]
    fn round_trip_and_tamper() {
        let pair = IdentityKeyPair::generate(&mut OsRng);
        let bytes = pair.public().to_bytes();
        assert_eq!(IdentityKey::from_bytes(&bytes).unwrap(), *pair.public());
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x40;
            assert!(
                IdentityKey::from_bytes(&bad).is_err(),
                "flip in byte {i} accepted"
            );
        }
        assert!(matches!(
            IdentityKey::from_bytes(&bytes[..127]),
            Err(IdentityDecodeError::Decode(DecodeError::Truncated))
        ));
        // Over the fixed length: refused by the length bound before anything is read.
        let mut long = bytes.to_vec();
        long.push(0);
        assert!(matches!(
            IdentityKey::from_bytes(&long),
            Err(IdentityDecodeError::Decode(DecodeError::TooLarge))
        ));
    }

    #[test]
    fn secret_round_trip() {
        let pair = IdentityKeyPair::generate(&mut OsRng);
        let again = IdentityKeyPair::from_secret_bytes(pair.secret_bytes().as_ref()).unwrap();
        assert_eq!(again.public(), pair.public());
    }

    #[test]
    fn debug_never_prints_secrets() {
        let pair = IdentityKeyPair::from_secret_bytes(&[0x42; 64]).unwrap();
        let text = format!("{pair:?}");
        assert!(!text.contains("4242"), "{text}");
        assert!(!text.contains("66, 66"), "{text}");
    }
}
