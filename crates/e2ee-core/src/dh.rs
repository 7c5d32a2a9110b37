//! X25519 keys. Every Diffie-Hellman here rejects non-contributory (all-zero) outputs, which
//! is what a low-order public key produces.
//!
//! A received public key must be the canonical encoding of its u-coordinate: bit 255 clear
//! and `u < p = 2^255 - 19`. X25519 ignores bit 255 and reduces `u` modulo `p`, so without
//! this check one key has several encodings that all agree to the same secret, and anything
//! keyed on the bytes (a replay record, a handshake lookup) could be sidestepped.

use std::fmt;

use rand_core::{CryptoRng, RngCore};
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

use crate::{
    Reader,
    debug_hex::hex_prefix,
    error::{DecodeError, KeyError},
};

/// An X25519 public key (32 bytes).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct DhPublicKey(pub(crate) [u8; 32]);

impl DhPublicKey {
    /// The 32-byte encoding.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0
    }

    /// Decodes a key, refusing non-canonical encodings (bit 255 set, or `u >= p`) with
    /// [`DecodeError::NonCanonical`]. Low-order keys are refused at DH time.
    pub fn from_bytes(bytes: [u8; 32]) -> Result<Self, DecodeError> {
        if !is_canonical(&bytes) {
            return Err(DecodeError::NonCanonical);
        }
        Ok(Self(bytes))
    }

    /// Reads a 32-byte key (see [`Self::from_bytes`]).
    pub(crate) fn read(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Self::from_bytes(reader.array()?)
    }

    /// Whether the point is in the prime-order subgroup (no torsion component): true for every
    /// key made by [`DhKeyPair`]. X25519 clamps secrets to multiples of 8, so `P` and
    /// `P + T` for a torsion point `T` agree to the same secret; plain X3DH, which has no KEM
    /// ciphertext to tell handshakes apart, refuses base keys that fail this.
    pub(crate) fn is_torsion_free(&self) -> bool {
        curve25519_dalek::montgomery::MontgomeryPoint(self.0)
            .to_edwards(0)
            .is_some_and(|point| point.is_torsion_free())
    }
}

/// Bit 255 clear and `u < 2^255 - 19` (little-endian).
fn is_canonical(bytes: &[u8; 32]) -> bool {
    if bytes[31] & 0x80 != 0 {
        return false;
    }
    // u >= p only for u = p .. 2^255 - 1: bytes ed..ff || ff * 30 || 7f.
    let at_least_p =
        bytes[31] == 0x7f && bytes[1..31].iter().all(|&b| b == 0xff) && bytes[0] >= 0xed;
    !at_least_p
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
    fn non_canonical_encodings_are_refused() {
        let key = DhKeyPair::generate(&mut OsRng).public();
        assert_eq!(DhPublicKey::from_bytes(key.to_bytes()), Ok(key));
        let mut high = key.to_bytes();
        high[31] |= 0x80;
        assert_eq!(
            DhPublicKey::from_bytes(high),
            Err(DecodeError::NonCanonical)
        );
        // p - 1 is the largest canonical u; p .. 2^255 - 1 are not.
        let mut p_minus_1 = [0xff; 32];
        p_minus_1[0] = 0xec;
        p_minus_1[31] = 0x7f;
        assert!(DhPublicKey::from_bytes(p_minus_1).is_ok());
        for low in [0xed, 0xee, 0xff] {
            let mut at_least_p = p_minus_1;
            at_least_p[0] = low;
            assert_eq!(
                DhPublicKey::from_bytes(at_least_p),
                Err(DecodeError::NonCanonical)
            );
        }
        // u = 9 and u + p = [0xf6, 0xff * 30, 0x7f] agree to the same secret: exactly what
        // the check rules out.
        let ours = DhKeyPair::generate(&mut OsRng);
        let mut nine = [0u8; 32];
        nine[0] = 9;
        let mut plus_p = [0xff; 32];
        plus_p[0] = 0xf6;
        plus_p[31] = 0x7f;
        assert_eq!(
            *ours.agree(&DhPublicKey(nine)).unwrap(),
            *ours.agree(&DhPublicKey(plus_p)).unwrap()
        );
        assert!(DhPublicKey::from_bytes(plus_p).is_err());
    }

    #[test]
    fn generated_keys_are_torsion_free_and_torsion_variants_are_not() {
        let key = DhKeyPair::generate(&mut OsRng).public();
        assert!(key.is_torsion_free());
        let point = curve25519_dalek::montgomery::MontgomeryPoint(key.0)
            .to_edwards(0)
            .unwrap();
        let torsion = curve25519_dalek::constants::EIGHT_TORSION[1];
        let variant = DhPublicKey((point + torsion).to_montgomery().to_bytes());
        assert_ne!(variant, key);
        assert!(!variant.is_torsion_free());
        // The variant agrees to the same secret as the key itself.
        let ours = DhKeyPair::generate(&mut OsRng);
        assert_eq!(*ours.agree(&key).unwrap(), *ours.agree(&variant).unwrap());
    }

    #[test]
    fn debug_hides_the_secret() {
        let a = DhKeyPair::from_secret_bytes([7u8; 32]);
        let text = format!("{a:?}");
        assert!(!text.contains("0707070707"), "{text}");
    }
}
