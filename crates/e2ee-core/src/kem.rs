//! ML-KEM-768 (FIPS 203) through libcrux-ml-kem, whose portable and AVX2 code is formally
//! verified (hax/F*) for panic freedom and functional correctness. Randomness is passed in
//! explicitly, which keeps this crate sans-I/O and the test vectors deterministic.

use std::fmt;

use libcrux_ml_kem::mlkem768::{self, MlKem768Ciphertext, MlKem768PrivateKey, MlKem768PublicKey};
use rand_core::{CryptoRng, RngCore};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::{debug_hex::hex_prefix, error::DecodeError};

/// Encoded ML-KEM-768 encapsulation key.
pub const KEM_PUBLIC_KEY_LEN: usize = 1184;
/// Encoded ML-KEM-768 ciphertext.
pub const KEM_CIPHERTEXT_LEN: usize = 1088;
/// Encoded ML-KEM-768 decapsulation key.
pub const KEM_SECRET_KEY_LEN: usize = 2400;

/// A validated ML-KEM-768 encapsulation key.
#[derive(Clone)]
pub struct KemPublicKey(Box<MlKem768PublicKey>);

impl KemPublicKey {
    /// Decodes and validates (FIPS 203 modulus check) an encapsulation key.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let array: &[u8; KEM_PUBLIC_KEY_LEN] = bytes
            .try_into()
            .map_err(|_| DecodeError::InvalidField("KEM public key length"))?;
        let key = Box::new(MlKem768PublicKey::from(array));
        if !mlkem768::validate_public_key(&key) {
            return Err(DecodeError::InvalidField("KEM public key"));
        }
        Ok(Self(key))
    }

    /// The 1184-byte encoding.
    pub fn as_bytes(&self) -> &[u8; KEM_PUBLIC_KEY_LEN] {
        self.0.as_slice()
    }

    /// Encapsulates a fresh shared secret to this key.
    pub(crate) fn encapsulate(
        &self,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> (Box<[u8; KEM_CIPHERTEXT_LEN]>, Zeroizing<[u8; 32]>) {
        let mut randomness = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(randomness.as_mut());
        let (ciphertext, shared) = mlkem768::encapsulate(&self.0, *randomness);
        (Box::new(*ciphertext.as_slice()), Zeroizing::new(shared))
    }
}

impl PartialEq for KemPublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}
impl Eq for KemPublicKey {}

impl fmt::Debug for KemPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KemPublicKey({})", hex_prefix(self.as_bytes()))
    }
}

/// The decapsulation key, boxed so moves do not leave copies behind.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
struct KemSecret(Box<[u8; KEM_SECRET_KEY_LEN]>);

/// An ML-KEM-768 key pair. The decapsulation key is zeroized on drop.
#[derive(Clone)]
pub struct KemKeyPair {
    secret: KemSecret,
    public: KemPublicKey,
}

impl KemKeyPair {
    /// A fresh key pair.
    pub fn generate(rng: &mut (impl RngCore + CryptoRng)) -> Self {
        let mut seed = Zeroizing::new([0u8; 64]);
        rng.fill_bytes(seed.as_mut());
        let pair = mlkem768::generate_key_pair(*seed);
        let (mut sk, pk) = pair.into_parts();
        let secret = KemSecret(Box::new(*sk.as_slice()));
        sk[0..KEM_SECRET_KEY_LEN].zeroize();
        Self {
            secret,
            public: KemPublicKey(Box::new(pk)),
        }
    }

    /// Rebuilds a key pair from its stored secret and public encodings.
    pub fn from_bytes(secret: &[u8], public: &[u8]) -> Result<Self, DecodeError> {
        let secret: &[u8; KEM_SECRET_KEY_LEN] = secret
            .try_into()
            .map_err(|_| DecodeError::InvalidField("KEM secret key length"))?;
        let public = KemPublicKey::from_bytes(public)?;
        // FIPS 203 embeds the encapsulation key in the decapsulation key; they must agree.
        if secret[1152..1152 + KEM_PUBLIC_KEY_LEN] != public.as_bytes()[..] {
            return Err(DecodeError::InvalidField("KEM key pair mismatch"));
        }
        Ok(Self {
            secret: KemSecret(Box::new(*secret)),
            public,
        })
    }

    /// The decapsulation key bytes, for a store. Handle with care.
    pub fn secret_bytes(&self) -> &[u8; KEM_SECRET_KEY_LEN] {
        &self.secret.0
    }

    /// The public half.
    pub fn public(&self) -> &KemPublicKey {
        &self.public
    }

    /// Decapsulates `ciphertext`. ML-KEM uses implicit rejection: a bad ciphertext yields an
    /// unrelated secret, so a forgery surfaces later as an authentication failure.
    pub(crate) fn decapsulate(&self, ciphertext: &[u8; KEM_CIPHERTEXT_LEN]) -> Zeroizing<[u8; 32]> {
        let mut sk = MlKem768PrivateKey::from(&*self.secret.0);
        let shared = mlkem768::decapsulate(&sk, &MlKem768Ciphertext::from(ciphertext));
        sk[0..KEM_SECRET_KEY_LEN].zeroize();
        Zeroizing::new(shared)
    }
}

impl fmt::Debug for KemKeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KemKeyPair")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use rand_core::OsRng;

    use super::*;

    #[test]
    fn encapsulation_round_trip() {
        let pair = KemKeyPair::generate(&mut OsRng);
        let (ct, ss) = pair.public().encapsulate(&mut OsRng);
        assert_eq!(*pair.decapsulate(&ct), *ss);
        let again = KemKeyPair::from_bytes(pair.secret_bytes(), pair.public().as_bytes()).unwrap();
        assert_eq!(*again.decapsulate(&ct), *ss);
    }

    #[test]
    fn invalid_public_keys_are_refused() {
        assert!(KemPublicKey::from_bytes(&[0u8; 10]).is_err());
        // Coefficients >= q (all 0xff) fail the FIPS 203 modulus check.
        assert!(KemPublicKey::from_bytes(&[0xffu8; KEM_PUBLIC_KEY_LEN]).is_err());
        let a = KemKeyPair::generate(&mut OsRng);
        let b = KemKeyPair::generate(&mut OsRng);
        assert!(KemKeyPair::from_bytes(a.secret_bytes(), b.public().as_bytes()).is_err());
    }
}
