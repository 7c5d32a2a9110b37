//! Every key derivation, with its info string. docs/protocol.md, section "Key derivation",
//! is the normative list.

use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::Zeroize;

/// PQXDH: `SK = HKDF(salt = 0^32, ikm = 0xFF^32 || DH1 || DH2 || DH3 [|| DH4] [|| SS], info)`.
pub(crate) const INFO_PQXDH: &[u8] = b"E2EE-v1_PQXDH_X25519_SHA-256_ML-KEM-768";
/// Plain X3DH (caller opted in): same as PQXDH without the KEM secret, its own label.
pub(crate) const INFO_X3DH: &[u8] = b"E2EE-v1_X3DH_X25519_SHA-256";
/// Root chain: `RK', CK = HKDF(salt = RK, ikm = DH_out, info)`, 64 bytes.
pub(crate) const INFO_ROOT: &[u8] = b"E2EE-v1_Ratchet_Root";
/// Message key expansion: `key || nonce = HKDF(salt = 0^32, ikm = MK, info)`, 44 bytes.
pub(crate) const INFO_MESSAGE_KEYS: &[u8] = b"E2EE-v1_Ratchet_MessageKeys";

/// Chain step constants (Signal's Double Ratchet spec).
pub(crate) const CHAIN_MESSAGE_KEY_SEED: u8 = 0x01;
pub(crate) const CHAIN_NEXT_KEY_SEED: u8 = 0x02;

/// HKDF-SHA256 into a fixed-size output. The lengths used here are all far below the
/// 255 * 32 bytes HKDF allows, so expansion cannot fail.
pub(crate) fn hkdf<const N: usize>(salt: Option<&[u8]>, ikm: &[u8], info: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    let hk = Hkdf::<Sha256>::new(salt, ikm);
    if hk.expand(info, &mut out).is_err() {
        // Unreachable for N <= 8160; keep the output zero rather than panic.
        out.zeroize();
    }
    out
}

/// HMAC-SHA256(key, [byte]); the chain step computes this inline, tests check against it.
#[cfg(test)]
pub(crate) fn hmac_byte(key: &[u8; 32], byte: u8) -> [u8; 32] {
    use hmac::{Hmac, Mac};
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = match <Hmac<Sha256> as Mac>::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => return [0u8; 32],
    };
    mac.update(&[byte]);
    mac.finalize().into_bytes().into()
}
