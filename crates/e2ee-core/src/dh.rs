//! X25519 keys. Every Diffie-Hellman here rejects non-contributory (all-zero) outputs, which
//! is what a low-order public key produces.

use std::fmt;

use rand_core::{CryptoRng, RngCore};
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

use crate::error::KeyError;

/// An X25519 public key (32 bytes).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct DhPublicKey(pub(crate) [u8; 32]);

impl DhPublicKey {
    /// The 32-byte encoding.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0
    }

    /// Any 32 bytes are an X25519 public key; low-order ones are refused at DH time.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }
}

impl fmt::Debug for DhPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DhPublicKey({})", hex_prefix(&self.0))
    }
}

/// An X25519 private key. Zeroized on drop; its `Debug` prints nothing secret.
#[derive(Clone)]
pub struct DhKeyPair {
    secret: StaticSecret,
    public: DhPublicKey,
}

impl DhKeyPair {
    /// A fresh key pair.
    pub fn generate(rng: &mut (impl RngCore + CryptoRng)) -> Self {
        let mut bytes = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(bytes.as_mut());
        Self::from_secret_bytes(*bytes)
    }

    /// Rebuilds a key pair from its 32 secret bytes (clamping happens inside X25519).
    pub fn from_secret_bytes(bytes: [u8; 32]) -> Self {
        let secret = StaticSecret::from(bytes);
        let public = DhPublicKey(PublicKey::from(&secret).to_bytes());
        Self { secret, public }
    }

    /// The secret bytes, for serialisation by a store. Handle with care.
    pub fn secret_bytes(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.secret.to_bytes())
    }

    /// The public half.
    pub fn public(&self) -> DhPublicKey {
        self.public
    }

    /// X25519 with `their` key; fails on a non-contributory result.
    pub(crate) fn agree(&self, their: &DhPublicKey) -> Result<Zeroizing<[u8; 32]>, KeyError> {
        let shared = self.secret.diffie_hellman(&PublicKey::from(their.0));
        if !shared.was_contributory() {
            return Err(KeyError::NonContributory);
        }
        Ok(Zeroizing::new(shared.to_bytes()))
    }
}

impl fmt::Debug for DhKeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DhKeyPair")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

/// First four bytes in hex, enough to tell keys apart in logs without printing them whole.
pub(crate) fn hex_prefix(bytes: &[u8]) -> String {
    bytes
        .iter()
        .take(4)
        .map(|b| format!("{b:02x}"))
        .collect::<String>()
        + ".."
}

#[cfg(test)]
mod tests {
    use rand_core::OsRng;

    use super::*;

    #[test]
    fn agreement_is_symmetric() {
        let a = DhKeyPair::generate(&mut OsRng);
        let b = DhKeyPair::generate(&mut OsRng);
        assert_eq!(
            *a.agree(&b.public()).unwrap(),
            *b.agree(&a.public()).unwrap()
        );
    }

    #[test]
    fn low_order_points_are_rejected() {
        let a = DhKeyPair::generate(&mut OsRng);
        // The identity point and a point of order 8 (from the Curve25519 low-order list).
        let zero = DhPublicKey([0u8; 32]);
        let mut order8 = [0u8; 32];
        order8[..8].copy_from_slice(&[0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae]);
        order8[8..].copy_from_slice(&[
            0x16, 0x56, 0xe3, 0xfa, 0xf1, 0x9f, 0xc4, 0x6a, 0xda, 0x09, 0x8d, 0xeb, 0x9c, 0x32,
            0xb1, 0xfd, 0x86, 0x62, 0x05, 0x16, 0x5f, 0x49, 0xb8, 0x00,
        ]);
        assert_eq!(a.agree(&zero).unwrap_err(), KeyError::NonContributory);
        assert_eq!(
            a.agree(&DhPublicKey(order8)).unwrap_err(),
            KeyError::NonContributory
        );
    }

    #[test]
    fn debug_hides_the_secret() {
        let a = DhKeyPair::from_secret_bytes([7u8; 32]);
        let text = format!("{a:?}");
        assert!(!text.contains("0707070707"), "{text}");
    }
}
