//! Strict decoding of Ed25519 public keys (docs/protocol.md section 4.7).
//!
//! A public key is accepted only if its 32 bytes are the canonical RFC 8032 encoding of a
//! curve point that is not of small order:
//!
//! * the y-coordinate (bits 0..255) is below `p = 2^255 - 19` (RFC 8032 section 5.1.3 step 1;
//!   `curve25519-dalek` alone would reduce it modulo `p`, so 19 points would have a second
//!   encoding);
//! * the point decompresses (a square root exists);
//! * the point is not of small order (weak keys, among them the two points with `x = 0`, so
//!   the "negative zero" encodings are refused too).
//!
//! Signatures are then checked with `verify_strict`, which also refuses a small-order `R`
//! and a non-canonical `S`.

use ed25519_dalek::{Signature, VerifyingKey};

use crate::error::KeyError;

/// The key, or `None` if it is not canonical, not a point, or of small order.
pub(crate) fn decode_public_key(bytes: &[u8; 32]) -> Option<VerifyingKey> {
    if !y_is_canonical(bytes) {
        return None;
    }
    let key = VerifyingKey::from_bytes(bytes).ok()?;
    (!key.is_weak()).then_some(key)
}

/// Checks `signature` over `message` with `verify_strict`; `what` names the signed object in
/// the error.
pub(crate) fn verify(
    key: &VerifyingKey,
    message: &[u8],
    signature: &[u8; 64],
    what: &'static str,
) -> Result<(), KeyError> {
    key.verify_strict(message, &Signature::from_bytes(signature))
        .map_err(|_| KeyError::InvalidSignature(what))
}

/// `y < p`, with the sign bit (bit 255) masked off.
fn y_is_canonical(bytes: &[u8; 32]) -> bool {
    let at_least_p =
        bytes[31] & 0x7f == 0x7f && bytes[1..31].iter().all(|&b| b == 0xff) && bytes[0] >= 0xed;
    !at_least_p
}

#[cfg(test)]
mod tests {
    use curve25519_dalek::edwards::CompressedEdwardsY;
    use ed25519_dalek::SigningKey;

    use super::*;

    #[test]
    fn ordinary_keys_decode() {
        let key = SigningKey::from_bytes(&[7; 32]).verifying_key();
        assert_eq!(decode_public_key(key.as_bytes()), Some(key));
    }

    #[test]
    fn non_canonical_y_is_refused() {
        // Some y < 19 is on the curve; y + p is its second, non-canonical encoding, which the
        // lenient decompression accepts as the same point.
        let mut found = 0;
        for y in 0u8..19 {
            let mut canonical = [0u8; 32];
            canonical[0] = y;
            let Some(point) = CompressedEdwardsY(canonical).decompress() else {
                continue;
            };
            let mut alias = [0xff; 32];
            alias[0] = 0xed + y;
            alias[31] = 0x7f;
            let aliased = CompressedEdwardsY(alias).decompress().unwrap();
            assert_eq!(aliased, point);
            assert_eq!(decode_public_key(&alias), None);
            found += 1;
        }
        assert!(found > 0);
    }

    #[test]
    fn small_order_points_are_refused() {
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert!(VerifyingKey::from_bytes(&identity).is_ok());
        assert_eq!(decode_public_key(&identity), None);
        // Negative zero: x = 0 with the sign bit set.
        identity[31] |= 0x80;
        assert_eq!(decode_public_key(&identity), None);
        for torsion in curve25519_dalek::constants::EIGHT_TORSION {
            assert_eq!(decode_public_key(torsion.compress().as_bytes()), None);
        }
    }
}
