//! Every key derivation, with its info string. docs/protocol.md, section "Key derivation",
//! and docs/protocol-groups.md section 2 are the normative list; no other label exists.
//!
//! HMAC-SHA256 and HKDF-SHA256 are built here so that they cannot fail: every HMAC key is 32
//! bytes, which HMAC zero-pads to the 64-byte block (RFC 2104), so the keyed state is made
//! with the infallible block-size constructor; HKDF (RFC 5869) is extract-then-expand over
//! that HMAC, and its output length is checked at compile time. There is no error path, so
//! there is no fallback value either.

use hmac::{
    Hmac, Mac,
    digest::{KeyInit, generic_array::GenericArray},
};
use sha2::Sha256;
use zeroize::Zeroizing;

/// PQXDH: `SK = HKDF(salt = 0^32, ikm = 0xFF^32 || DH1 || DH2 || DH3 [|| DH4] || SS, info)`,
/// info = this label followed by the handshake transcript (docs/protocol.md section 5).
pub(crate) const INFO_PQXDH: &[u8] = b"E2EE-v1_PQXDH_X25519_SHA-256_ML-KEM-768";
/// Plain X3DH (caller opted in): same as PQXDH without the KEM secret, its own label.
pub(crate) const INFO_X3DH: &[u8] = b"E2EE-v1_X3DH_X25519_SHA-256";
/// Root chain: `RK', CK = HKDF(salt = RK, ikm = DH_out, info)`, 64 bytes.
pub(crate) const INFO_ROOT: &[u8] = b"E2EE-v1_Ratchet_Root";
/// Pairwise message key expansion: `key || nonce = HKDF(salt = 0^32, ikm = MK, info)`.
pub(crate) const INFO_MESSAGE_KEYS: &[u8] = b"E2EE-v1_Ratchet_MessageKeys";
/// Sender-key message key expansion, same shape as [`INFO_MESSAGE_KEYS`].
pub(crate) const INFO_SENDER_KEY_MESSAGE_KEYS: &[u8] = b"E2EE-v1_SenderKey_MessageKeys";

/// Attachments: `aes_key (32) || nonce_prefix (7) = HKDF(salt = 0^32, ikm = media_key, info)`
/// (docs/media.md section 2).
pub(crate) const INFO_ATTACHMENT: &[u8] = b"E2EE-v1_Attachment";

/// Chain step constants (Signal's Double Ratchet spec).
pub(crate) const CHAIN_MESSAGE_KEY_SEED: u8 = 0x01;
pub(crate) const CHAIN_NEXT_KEY_SEED: u8 = 0x02;

/// The all-zero HKDF salt RFC 5869 uses when no salt is given.
pub(crate) const ZERO_SALT: [u8; 32] = [0u8; 32];

/// HMAC-SHA256 keyed with a 32-byte key. The key is padded with zeros to the 64-byte block
/// exactly as HMAC does for any key shorter than the block, so the result is HMAC(key, .).
///
/// The padded copy is not wiped: the keyed HMAC state (the hashed inner and outer pads,
/// key-equivalent) lives unwiped in the returned value and in the hmac crate's own stack
/// copies anyway, and wiping ours costs 15% of a chain step (measured on the 1,000-message
/// jump of the group benchmark).
pub(crate) fn hmac_sha256(key: &[u8; 32]) -> Hmac<Sha256> {
    let mut block = [0u8; 64];
    block[..32].copy_from_slice(key);
    <Hmac<Sha256> as KeyInit>::new(GenericArray::from_slice(block.as_slice()))
}

/// HKDF-SHA256 (RFC 5869) into `N` bytes, `N` at most 255 * 32 (checked when compiling).
pub(crate) fn hkdf<const N: usize>(salt: &[u8; 32], ikm: &[u8], info: &[u8]) -> Zeroizing<[u8; N]> {
    const { assert!(N <= 255 * 32, "HKDF-SHA256 output is at most 8160 bytes") };
    let mut extract = hmac_sha256(salt);
    extract.update(ikm);
    let prk: Zeroizing<[u8; 32]> = Zeroizing::new(extract.finalize().into_bytes().into());
    let expand = hmac_sha256(&prk);
    let mut out = Zeroizing::new([0u8; N]);
    let mut previous: Zeroizing<[u8; 32]> = Zeroizing::new([0u8; 32]);
    for (index, block) in out.chunks_mut(32).enumerate() {
        let mut mac = expand.clone();
        if index > 0 {
            mac.update(previous.as_slice());
        }
        mac.update(info);
        // index < 255 because N <= 255 * 32.
        mac.update(&[index as u8 + 1]);
        *previous = mac.finalize().into_bytes().into();
        block.copy_from_slice(&previous[..block.len()]);
    }
    out
}

/// HMAC-SHA256(key, [byte]); the chain step computes this inline, tests check against it.
#[cfg(test)]
pub(crate) fn hmac_byte(key: &[u8; 32], byte: u8) -> [u8; 32] {
    let mut mac = hmac_sha256(key);
    mac.update(&[byte]);
    mac.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    use hkdf::Hkdf;
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// The infallible constructions agree with the RustCrypto crates' own.
        #[test]
        fn hmac_and_hkdf_match_the_reference_crates(
            key: [u8; 32],
            ikm in prop::collection::vec(any::<u8>(), 0..200),
            info in prop::collection::vec(any::<u8>(), 0..200),
        ) {
            let mut reference = <Hmac<Sha256> as Mac>::new_from_slice(&key).unwrap();
            reference.update(&ikm);
            let mut ours = hmac_sha256(&key);
            ours.update(&ikm);
            prop_assert_eq!(ours.finalize().into_bytes(), reference.finalize().into_bytes());

            let hk = Hkdf::<Sha256>::new(Some(&key), &ikm);
            let mut expected = [0u8; 100];
            hk.expand(&info, &mut expected).unwrap();
            prop_assert_eq!(*hkdf::<100>(&key, &ikm, &info), expected);
            let mut expected = [0u8; 32];
            hk.expand(&info, &mut expected).unwrap();
            prop_assert_eq!(*hkdf::<32>(&key, &ikm, &info), expected);
        }
    }

    #[test]
    fn absent_salt_is_the_zero_salt() {
        let hk = Hkdf::<Sha256>::new(None, b"ikm");
        let mut expected = [0u8; 44];
        hk.expand(b"info", &mut expected).unwrap();
        assert_eq!(*hkdf::<44>(&ZERO_SALT, b"ikm", b"info"), expected);
    }
}
