//! The account identity key: one Ed25519 key per user, held by the primary device, that
//! certifies the user's devices and signs their device list.
//!
//! ```text
//! AccountIdentityKey (32) = Ed25519 public key (strict decoding, docs/protocol.md 4.7)
//! secret (32)             = Ed25519 seed
//! ```

use std::fmt;

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use rand_core::{CryptoRng, RngCore};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::{
    Codec, Reader,
    debug_hex::hex_prefix,
    ed25519::decode_public_key,
    error::{DecodeError, KeyError},
};

/// Encoded length of an [`AccountIdentityKey`].
pub const ACCOUNT_IDENTITY_KEY_LEN: usize = 32;
/// Encoded length of an [`AccountIdentityKeyPair`] secret (the Ed25519 seed).
pub const ACCOUNT_IDENTITY_SECRET_LEN: usize = 32;

/// An account's public identity: the Ed25519 key that certifies its devices.
#[derive(Clone, Copy)]
pub struct AccountIdentityKey(VerifyingKey);

impl AccountIdentityKey {
    /// The 32-byte encoding.
    pub fn to_array(&self) -> [u8; ACCOUNT_IDENTITY_KEY_LEN] {
        self.0.to_bytes()
    }

    pub(crate) fn verify(
        &self,
        message: &[u8],
        signature: &[u8; 64],
        what: &'static str,
    ) -> Result<(), KeyError> {
        crate::ed25519::verify(&self.0, message, signature, what)
    }
}

impl Codec for AccountIdentityKey {
    type Error = DecodeError;
    const MAX_LEN: usize = ACCOUNT_IDENTITY_KEY_LEN;

    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.0.as_bytes());
    }

    /// Refuses bytes that are not the canonical encoding of a point of large order.
    fn read(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        decode_public_key(&reader.array()?)
            .map(Self)
            .ok_or(DecodeError::InvalidField("account identity key"))
    }
}

impl PartialEq for AccountIdentityKey {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_bytes().ct_eq(other.0.as_bytes()).into()
    }
}
impl Eq for AccountIdentityKey {}

impl fmt::Debug for AccountIdentityKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AccountIdentityKey({})", hex_prefix(self.0.as_bytes()))
    }
}

/// The account identity with its secret. The Ed25519 key zeroizes itself on drop;
/// `Debug` prints only the public key.
#[derive(Clone)]
pub struct AccountIdentityKeyPair {
    signing: SigningKey,
}

impl AccountIdentityKeyPair {
    /// A fresh account identity.
    pub fn generate(rng: &mut (impl RngCore + CryptoRng)) -> Self {
        let mut seed = Zeroizing::new([0u8; ACCOUNT_IDENTITY_SECRET_LEN]);
        rng.fill_bytes(seed.as_mut());
        Self {
            signing: SigningKey::from_bytes(&seed),
        }
    }

    /// Rebuilds the key pair from [`Self::secret_bytes`].
    pub fn from_secret_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let seed = Zeroizing::new(Reader::decode_exact(bytes, |r| {
            r.array::<ACCOUNT_IDENTITY_SECRET_LEN>()
        })?);
        Ok(Self {
            signing: SigningKey::from_bytes(&seed),
        })
    }

    /// The Ed25519 seed, for a store to persist. Handle with care.
    pub fn secret_bytes(&self) -> Zeroizing<[u8; ACCOUNT_IDENTITY_SECRET_LEN]> {
        Zeroizing::new(self.signing.to_bytes())
    }

    /// The public account identity.
    pub fn public(&self) -> AccountIdentityKey {
        AccountIdentityKey(self.signing.verifying_key())
    }

    pub(crate) fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.signing.sign(message).to_bytes()
    }
}

impl fmt::Debug for AccountIdentityKeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccountIdentityKeyPair")
            .field("public", &self.public())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use e2ee_encoding::check_codec;
    use rand_core::OsRng;

    use super::*;

    #[test]
    fn account_key_encoding() {
        let pair = AccountIdentityKeyPair::generate(&mut OsRng);
        let public = pair.public();
        check_codec(&public);
        assert!(AccountIdentityKey::from_bytes(&[0u8; 31]).is_err());
        let mut identity_point = [0u8; 32];
        identity_point[0] = 1;
        assert_eq!(
            AccountIdentityKey::from_bytes(&identity_point),
            Err(DecodeError::InvalidField("account identity key"))
        );
        let again =
            AccountIdentityKeyPair::from_secret_bytes(pair.secret_bytes().as_ref()).unwrap();
        assert_eq!(again.public(), public);
        assert!(AccountIdentityKeyPair::from_secret_bytes(&[1u8; 33]).is_err());
    }

    #[test]
    fn debug_never_prints_secrets() {
        let pair = AccountIdentityKeyPair::from_secret_bytes(&[0x42; 32]).unwrap();
        let text = format!("{pair:?}");
        assert!(!text.contains("4242"), "{text}");
        assert!(!text.contains("66, 66"), "{text}");
        assert!(text.contains("AccountIdentityKey("), "{text}");
    }
}
